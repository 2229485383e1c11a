#!/usr/bin/env bash
# Benchmark: apply N small migrations to a fresh local PostgreSQL database with offkit (release
# build), `sqlx migrate run` (sqlx-cli) and dbmate, on the same SQL, in one run.
#
# Usage: bench/migrate/run.sh [N] [REPEATS] [SHAPE]   (defaults: 10000 migrations, 3 repeats, ddl)
#   SHAPE ddl: migration i is `CREATE TABLE bench_i (id integer NOT NULL, note text);`
#   SHAPE dml: migration 100 creates one table; migration i inserts one row into it.
# Needs: PostgreSQL at $DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#        psql, sqlx (cargo install sqlx-cli --no-default-features --features postgres),
#        dbmate (npm install dbmate in $DBMATE_DIR, default /tmp/mig-bench/dbmate).
# TOOLS picks the tools (default "offkit sqlx dbmate"); "offkit-base" is a second offkit binary,
# $OFFKIT_BASE (e.g. a release build of an earlier commit), to compare offkit against itself.
# Prints a Markdown table of wall times (best and median of the repeats) and ratios.
set -euo pipefail

N=${1:-10000}
REPEATS=${2:-3}
SHAPE=${3:-ddl}
ADMIN=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BASE=${ADMIN%/*}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OFFKIT=${OFFKIT:-$ROOT/target/release/offkit}
SQLX=${SQLX:-$(command -v sqlx || echo "$HOME/.cargo/bin/sqlx")}
DBMATE=${DBMATE:-${DBMATE_DIR:-/tmp/mig-bench/dbmate}/node_modules/.bin/dbmate}
OFFKIT_BASE=${OFFKIT_BASE:-}
read -r -a TOOL_LIST <<<"${TOOLS:-offkit sqlx dbmate}"
WORK=$(mktemp -d /tmp/offkit-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

[ -x "$OFFKIT" ] || (cd "$ROOT" && cargo build --release --quiet)
binary() { case $1 in offkit) echo "$OFFKIT" ;; offkit-base) echo "$OFFKIT_BASE" ;; sqlx) echo "$SQLX" ;; dbmate) echo "$DBMATE" ;; esac; }
for tool in "${TOOL_LIST[@]}"; do
  command -v "$(binary "$tool")" >/dev/null || { echo "missing: $tool ($(binary "$tool"))" >&2; exit 1; }
done
command -v psql >/dev/null || { echo "missing: psql" >&2; exit 1; }

# The same SQL for every tool, numbered 100..N+99.
mkdir -p "$WORK/kit/migrations/bench" "$WORK/sqlx" "$WORK/dbmate"
printf 'name = "bench"\nversion = "1.0.0"\nchannel = "bench"\nsequence = 1\ntarget = "postgres"\n' > "$WORK/kit/kit.toml"
for ((i = 0; i < N; i++)); do
  v=$((100 + i))
  case $SHAPE in
    ddl) sql="CREATE TABLE bench_$v (id integer NOT NULL, note text);" ;;
    dml) if [ "$i" = 0 ]; then sql="CREATE TABLE bench_rows (id integer NOT NULL, note text);"
         else sql="INSERT INTO bench_rows (id, note) VALUES ($v, 'migration $v');"; fi ;;
    *) echo "unknown shape $SHAPE" >&2; exit 2 ;;
  esac
  printf '%s\n' "$sql" > "$WORK/kit/migrations/bench/${v}_bench.sql"
  printf '%s\n' "$sql" > "$WORK/sqlx/${v}_bench.sql"
  # dbmate orders files by name: zero-pad its versions so that 1000 sorts after 100.
  printf -- '-- migrate:up\n%s\n\n-- migrate:down\n' "$sql" > "$WORK/dbmate/$(printf %05d "$v")_bench.sql"
done

fresh() { # fresh DB name -> URL
  psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
  echo "$BASE/$1"
}
drop() { psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null; }
now() { date +%s.%N; }

declare -A TIMES
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
run_tool() { # tool repeat
  local tool=$1 db="offkit_bench_${1//-/_}_$2" url t0 t1 count
  url=$(fresh "$db")
  t0=$(now)
  case $tool in
    offkit|offkit-base) "$(binary "$tool")" migrations run --source "$WORK/kit" --db "$url" --category release --force >/dev/null ;;
    sqlx) "$SQLX" migrate run --source "$WORK/sqlx" --database-url "$url" >/dev/null ;;
    dbmate) "$DBMATE" --url "$url?sslmode=disable" --migrations-dir "$WORK/dbmate" --no-dump-schema migrate >/dev/null ;;
  esac
  t1=$(now)
  if [ "$SHAPE" = ddl ]; then
    count=$(psql -Atq "$url" -c "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench\_%'")
  else
    count=$(psql -Atq "$url" -c "SELECT count(*) + 1 FROM bench.bench_rows" 2>/dev/null ||
            psql -Atq "$url" -c "SELECT count(*) + 1 FROM public.bench_rows")
  fi
  [ "$count" = "$N" ] || { echo "$tool applied $count of $N" >&2; exit 1; }
  drop "$db"
  TIMES[$tool]+="$(echo "$t1 - $t0" | bc -l) "
}

for ((r = 1; r <= REPEATS; r++)); do
  for tool in "${TOOL_LIST[@]}"; do run_tool "$tool" "$r"; done
done

stats() { # "t1 t2 ..." -> "best median"
  tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.2f %.2f", a[1], a[int((NR+1)/2)]}'
}
version() {
  case $1 in
    offkit|offkit-base) "$(binary "$1")" --version | awk '{print $2}' ;;
    sqlx) "$SQLX" --version | awk '{print $2}' ;;
    dbmate) "$DBMATE" --version | awk '{print $3}' ;;
  esac
}
label() {
  case $1 in
    offkit) echo "offkit migrations run" ;; offkit-base) echo "offkit migrations run (baseline build)" ;;
    sqlx) echo "sqlx migrate run" ;; dbmate) echo "dbmate migrate" ;;
  esac
}
read -r ob om <<<"$(stats "${TIMES[offkit]}")"
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "PostgreSQL: $(psql -Atq "$ADMIN" -c 'SHOW server_version'), local TCP; $(for t in "${TOOL_LIST[@]}"; do printf '%s %s; ' "$t" "$(version "$t")"; done)"
echo "$N migrations ($SHAPE shape), $REPEATS runs each, fresh database per run; wall time in seconds; load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| tool | best (s) | median (s) | median vs offkit |"
echo "|---|---:|---:|---:|"
faster=""
for tool in "${TOOL_LIST[@]}"; do
  read -r b m <<<"$(stats "${TIMES[$tool]}")"
  printf '| %s | %s | %s | %.2f |\n' "$(label "$tool")" "$b" "$m" "$(echo "$m / $om" | bc -l)"
  case $tool in sqlx|dbmate) if [ -z "$faster" ] || [ "$(echo "$m < $faster" | bc -l)" = 1 ]; then faster=$m; fi ;; esac
done
echo
if [ -n "$faster" ]; then
  printf 'offkit / faster peer (median): %.2f (target: <= 0.50); offkit under 5 s: %s\n' \
    "$(echo "$om / $faster" | bc -l)" "$(echo "$om < 5" | bc -l | sed 's/1/yes/;s/0/no/')"
fi
