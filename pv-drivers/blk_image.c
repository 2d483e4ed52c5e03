/* The backing store of a virtual block device: a raw image file or a host block device, opened and
 * locked so that many read-only users may share it and a writer has it alone. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "blkback.h"

/* An OFD lock belongs to the open file description, not the process: one blkback serving several
 * devices still sees its own second writable open of the same image refused. */
static int blk_image_lock(int fd, int readonly)
{
	struct flock fl = {
		.l_type = readonly ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,
	};

	if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		return (errno == EAGAIN || errno == EACCES) ? -EBUSY : -errno;
	return 0;
}

/* Whether fd's file system keeps its data in memory only. */
static int blk_image_in_memory(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return 0;
	return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC || sf.f_type == HUGETLBFS_MAGIC;
}

static int blk_image_size(int fd, struct blk_image *img, char *why, size_t whylen)
{
	struct stat st;
	uint64_t bytes;

	if (fstat(fd, &st) < 0) {
		snprintf(why, whylen, "fstat: %s", strerror(errno));
		return -errno;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
			snprintf(why, whylen, "BLKGETSIZE64: %s", strerror(errno));
			return -errno;
		}
		img->is_blockdev = 1;
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
		img->memory_backed = blk_image_in_memory(fd);
	} else {
		snprintf(why, whylen, "not a regular file or block device");
		return -EINVAL;
	}
	if (bytes < BLK_SECTOR_SIZE) {
		snprintf(why, whylen, "image smaller than one sector");
		return -EINVAL;
	}
	img->sectors = bytes / BLK_SECTOR_SIZE;
	return 0;
}

int blk_image_open(struct blk_image *img, const char *path, int readonly, char *why, size_t whylen)
{
	int fd, rc;

	memset(img, 0, sizeof(*img));
	img->fd = -1;
	fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return rc;
	}
	rc = blk_image_lock(fd, readonly);
	if (rc < 0) {
		if (rc == -EBUSY)
			snprintf(why, whylen, "%s: in use by %s", path,
				 readonly ? "a writer" : "another user (a writable image has one user)");
		else
			snprintf(why, whylen, "%s: lock: %s", path, strerror(-rc));
		goto out_close;
	}
	rc = blk_image_size(fd, img, why, whylen);
	if (rc < 0)
		goto out_close;
	img->fd = fd;
	img->readonly = readonly;
	return 0;

out_close:
	close(fd);
	return rc;
}

void blk_image_close(struct blk_image *img)
{
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
}
