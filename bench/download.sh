#!/usr/bin/env bash
# Download throughput and peak memory of `areo fetch` next to curl, from the same local
# server (Python's http.server on 127.0.0.1), for files of 256 MB and 1 GB.
#
#   bench/download.sh            # sizes in MB may be given: bench/download.sh 256 1024
#
# Prints, per size: seconds, MB/s and peak RSS for curl and for areo (its daemon, which does
# the download), and areo's share of
# curl's throughput. areo also hashes (SHA-256), fsyncs and records the file in its catalog;
# the curl+fsync row adds the fsync to curl.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-256 1024}")
cargo build --release --quiet
areo="$PWD/target/release/areo"
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/served"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/served" >/dev/null 2>&1 &
server=$!
sleep 1

printf '%-8s %-11s %8s %10s %12s\n' size client seconds MB/s "peak RSS MB"
for mb in ${sizes[*]}; do
  name="BENCH_${mb}MB.JP2"
  head -c "$((mb * 1000 * 1000))" /dev/urandom > "$work/served/$name"
  url="http://127.0.0.1:$port/$name"
  ws="$work/ws-$mb"
  cat > "$work/reply.json" <<JSON
{"ODEResults": {"Products": {"Product": {"pdsid": "BENCH_$mb", "ihid": "MRO", "iid": "HIRISE", "pt": "RDRV11",
 "Product_files": {"Product_file": [{"FileName": "$name", "Type": "Product", "URL": "$url", "KBytes": "$((mb * 1000))"}]}}},
 "Status": "Success"}}
JSON
  "$areo" --workspace "$ws" catalog import "$work/reply.json" >/dev/null 2>&1
  # Warm the server's page cache once, so neither client pays for the first read.
  curl -s -o /dev/null "$url"
  /usr/bin/time -f '%e %M' -o "$work/time" curl -s -o "$work/curl.out" "$url"
  read -r curl_s curl_kb < "$work/time"
  rm -f "$work/curl.out"
  # curl then fsync of its file: the durability areo pays for before it renames.
  /usr/bin/time -f '%e %M' -o "$work/time" sh -c 'curl -s -o "$1" "$2" && sync "$1"' - "$work/curl.out" "$url"
  read -r synced_s synced_kb < "$work/time"
  rm -f "$work/curl.out"
  # The download runs in the workspace's daemon (started by the import above): time the
  # command that waits for it, and take the daemon's peak memory.
  /usr/bin/time -f '%e %M' -o "$work/time" "$areo" --workspace "$ws" fetch "BENCH_$mb" --kind rdr >/dev/null 2>&1
  read -r areo_s _ < "$work/time"
  areo_kb=$(awk '/VmHWM/ {print $2}' "/proc/$(cat "$ws/areo.lock")/status")
  "$areo" --workspace "$ws" stop >/dev/null
  cmp -s "$work/served/$name" "$ws/products/BENCH_$mb/$name" || { echo "areo's copy differs" >&2; exit 1; }
  for row in "curl $curl_s $curl_kb" "curl+fsync $synced_s $synced_kb" "areo $areo_s $areo_kb"; do
    set -- $row
    printf '%-8s %-11s %8.2f %10.0f %12.1f\n' "${mb}MB" "$1" "$2" "$(echo "$mb / $2" | bc -l)" "$(echo "$3 / 1024" | bc -l)"
  done
  printf '%-8s areo at %.0f%% of curl, %.0f%% of curl+fsync\n' "${mb}MB" \
    "$(echo "100 * $curl_s / $areo_s" | bc -l)" "$(echo "100 * $synced_s / $areo_s" | bc -l)"
  rm -f "$work/served/$name" "$ws/products/BENCH_$mb/$name"
done
