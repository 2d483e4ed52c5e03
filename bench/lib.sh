# Shared by every bench/NAME.sh: where things are, and how a figure is recorded.
# A figure is one JSON object {"metric","value","unit","limit","ratio","target"} in
# build/bench/NAME.json (a list), and one printed line.
bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_OBJ="$bench_top/obj"
BENCH_PREFIX="$bench_top/build"
export PATH="$BENCH_PREFIX/bin:$BENCH_PREFIX/sbin:$PATH"
export LAMINA_HV="$BENCH_PREFIX/sbin/lamina-hv" LAMINA_XENSTORED="$BENCH_PREFIX/sbin/lamina-xenstored"
export LAMINA_CONSOLED="$BENCH_PREFIX/sbin/lamina-consoled" LAMINA_BLKBACK="$BENCH_PREFIX/sbin/lamina-blkback"
export LAMINA_NETBACK="$BENCH_PREFIX/sbin/lamina-netback"
LAMINA_GUEST="$BENCH_PREFIX/share/lamina/guest/lamina-guest"

# bench_begin NAME: start build/bench/NAME.json
bench_begin() {
	BENCH_NAME=$1
	mkdir -p "$BENCH_PREFIX/bench"
	BENCH_JSON="$BENCH_PREFIX/bench/$1.json"
	BENCH_ITEMS=()
}

# bench_metric METRIC VALUE UNIT LIMIT TARGET
#   ratio = VALUE / LIMIT; TARGET is a plain statement of what the ratio must satisfy,
#   e.g. "<= 1.3" (the ratio is compared against it and the line says ok/MISS).
bench_metric() {
	local metric=$1 value=$2 unit=$3 limit=$4 target=$5 ratio verdict
	ratio=$(awk -v v="$value" -v l="$limit" 'BEGIN { if (l == 0) print "null"; else printf "%.3f", v / l }')
	verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN {
		if (r == "null" || t == "") { print "info"; exit }
		split(t, a, " "); op = a[1]; x = a[2] + 0;
		ok = (op == "<=" && r <= x) || (op == ">=" && r >= x) || (op == "<" && r < x) || (op == ">" && r > x);
		print ok ? "ok" : "MISS" }')
	BENCH_ITEMS+=("$(printf '{"metric": "%s", "value": %s, "unit": "%s", "limit": %s, "ratio": %s, "target": "%s"}' \
		"$metric" "$value" "$unit" "$limit" "$ratio" "$target")")
	printf '%-34s %12s %-8s limit %12s  ratio %7s  target %-8s %s\n' "$metric" "$value" "$unit" "$limit" "$ratio" "$target" "$verdict"
}

# bench_end: write the JSON list
bench_end() {
	local i sep=""
	{
		printf '[\n'
		for i in "${BENCH_ITEMS[@]}"; do printf '%s  %s' "$sep" "$i"; sep=$',\n'; done
		printf '\n]\n'
	} >"$BENCH_JSON"
	echo "wrote $BENCH_JSON"
}
