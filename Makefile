# Convenience targets; the README's two commands are the scripts these call.
.PHONY: demo test bench bench-quick bench-db

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

# Side-by-side with rclone (apt-get install -y rclone time); rewrites docs/benchmarks.md.
bench:
	./scripts/bench.sh

bench-quick:
	./scripts/bench.sh --quick --no-doc

# PostgreSQL: cloudshift db copy vs pgcopydb, pg_dump/pg_restore, pg_dump | psql.
bench-db:
	./scripts/bench.sh --db
