# skycat entry points. `make demo` and `make test` work on a fresh Debian 12 machine:
# scripts/setup.sh installs what is missing (apt packages, cargo-pgrx) and skips what is there.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PG_MAJOR   ?= 15
PG_CONFIG  ?= /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config
CLUSTER    := scripts/pg-cluster.sh
# `cargo pgrx install` writes into the PostgreSQL installation: needs root or sudo.
SUDO       := $(if $(filter 0,$(shell id -u)),,--sudo)
AS_ROOT    := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help setup setup-citus build install package test test-core test-pgrx test-regress test-e2e test-fuzz test-cluster test-package demo demo-stop demo-cluster cluster-start cluster-stop bench bench-ap bench-drp bench-cluster fmt lint clean-clusters

help:
	@echo "make demo   - set up, install skycat and run a scripted session on a private cluster"
	@echo "make test   - set up and run every test tier (core, pg_test, pg_regress, end-to-end, fuzz)"
	@echo "make bench  - benchmarks; results go to docs/benchmarks/ (make bench-ap: the nightly AP only; make bench-drp: DRP post-processing; make bench-cluster: one node vs Citus)"
	@echo "make install - build and install the extension into $(PG_CONFIG)'s PostgreSQL"
	@echo "make package - build the Debian package postgresql-15-skycat into target/packages/"
	@echo "make demo-cluster - the scale-out demo on a private Citus cluster (coordinator + 2 workers)"
	@echo "make cluster-start / cluster-stop - a private Citus cluster (coordinator + 2 workers) with skycat"

setup:
	@scripts/setup.sh

# Citus for the scale-out tier: an installed Citus, else built from CITUS_SOURCE (default
# ../shared/vendor, a release tarball), else instructions (scripts/citus-setup.sh).
setup-citus: setup
	@scripts/citus-setup.sh

build: setup
	cargo build --release

# The upgrade scripts from earlier releases are generated next to the install script
# (scripts/sql-upgrade.py; sql/upgrades/ holds what is written by hand).
install: setup
	cargo pgrx install --release --pg-config $(PG_CONFIG) $(SUDO)
	$(AS_ROOT) python3 scripts/sql-upgrade.py "$$($(PG_CONFIG) --sharedir)/extension"

# The Debian package postgresql-15-skycat (target/packages/), checked by scripts/package.sh.
package: setup
	scripts/package.sh $(PG_CONFIG)

# ---------------------------------------------------------------- tests
test: setup test-core test-pgrx install test-regress test-e2e test-fuzz test-cluster test-package
	@echo "all test tiers passed"

# The pure-Rust crates: core algorithms, the simulator, the AP driver (plot, helpers).
test-core:
	cargo test -p skycat-core -p skycat-sim -p skycat-ap --release

test-pgrx:
	scripts/pgrx-test.sh

test-regress:
	@$(CLUSTER) start test >/dev/null
	@. target/clusters/test.env && \
	  $(MAKE) -s -C tests/pg_regress installcheck PG_CONFIG=$(PG_CONFIG) \
	  || { cat tests/pg_regress/regression.diffs; exit 1; }

test-e2e:
	@$(CLUSTER) start test >/dev/null
	@. target/clusters/test.env && \
	  SKYCAT_TEST_DSN="host=$$PGHOST port=$$PGPORT user=$$PGUSER dbname=postgres" \
	  SKYCAT_PYTHON="$(CURDIR)/target/pyenv/bin/python" \
	  cargo test -p skycat-e2e --release -- --test-threads=1 --skip fuzz_every_skycat_function --skip cluster_

# Randomised calls of every SQL function with special values under a short statement_timeout:
# no crash, no uninterruptible hang, no undocumented SQLSTATE (tests/e2e/tests/fuzz.rs).
# SKYCAT_FUZZ_SECONDS (default 180) bounds it; SKYCAT_FUZZ_SEED reproduces a run. The parser
# fuzzing (crates/skycat-core/tests/fuzz_parsers.rs) runs in test-core.
test-fuzz:
	@$(CLUSTER) start test >/dev/null
	@. target/clusters/test.env && \
	  SKYCAT_TEST_DSN="host=$$PGHOST port=$$PGPORT user=$$PGUSER dbname=postgres" \
	  SKYCAT_TEST_SERVER_LOG="$$(cat target/clusters/test.dir)/server.log" \
	  cargo test -p skycat-e2e --release --test fuzz -- --test-threads=1

# Scale-out: the end-to-end scenarios on a private Citus cluster (tests/e2e/tests/cluster.rs).
# The cluster is created afresh, so it runs the skycat just installed.
test-cluster: setup-citus install
	@scripts/citus-cluster.sh destroy
	@scripts/citus-cluster.sh start >/dev/null
	@. target/clusters/citus.env && \
	  SKYCAT_CITUS_DSN="host=$$PGHOST port=$$PGPORT user=$$PGUSER dbname=$$PGDATABASE" \
	  cargo test -p skycat-e2e --release --test cluster -- --test-threads=1
	@scripts/citus-cluster.sh destroy

# The package builds, holds every file an installation needs at PostgreSQL's paths, and
# passes dpkg's checks against this system.
test-package: package

# ---------------------------------------------------------------- demo
demo: install
	cargo build --release -p skycat-sim -p skycat-ap  # the demo's data generator and AP driver
	@$(CLUSTER) start demo >/dev/null
	@. target/clusters/demo.env && psql -X -v ON_ERROR_STOP=1 -q -f demo/demo.sql
	@echo; echo "== 11. A simulated night through the nightly Association Pipeline (three sessions:"; \
	  echo "       prepare n+1, associate n and post n-1 at once; docs/nightly-ap.md)"
	@. target/clusters/demo.env && target/release/skycat-ap night \
	  --dsn "host=$$PGHOST port=$$PGPORT user=$$PGUSER dbname=skycat_demo" --schema ap \
	  --objects 200000 --visits 30 --sources-per-visit 2000 --sessions 3 --check-pairs \
	  --plot target/demo/ap-latency.png
	@echo; echo "== 12. A tiny simulated data release through DRP post-processing (docs/drp.md)"
	@rm -rf /tmp/skycat_demo_release /tmp/skycat_demo_export
	target/release/skycat-sim drp --dir /tmp/skycat_demo_release --objects 20000 --tracts 4 --visits-per-tract 12
	@. target/clusters/demo.env && psql -X -q -d skycat_demo -v release=/tmp/skycat_demo_release \
	  -v export=/tmp/skycat_demo_export -f demo/drp.sql
	@. target/clusters/demo.env && echo && \
	  echo "The demo cluster is still running. Connect with:" && \
	  echo "    psql -h $$PGHOST -p $$PGPORT -U postgres skycat_demo" && \
	  echo "Stop it with 'make demo-stop' (its data is deleted)."

demo-stop:
	@$(CLUSTER) destroy demo

# The scale-out demo on a private Citus cluster (a coordinator and two workers; docs/scale-out.md).
demo-cluster: setup-citus install
	cargo build --release -p skycat-sim
	@scripts/citus-cluster.sh start >/dev/null
	@. target/clusters/citus.env && psql -X -q -f demo/cluster.sql
	@. target/clusters/citus.env && echo && \
	  echo "The cluster is still running. Connect to its coordinator with:" && \
	  echo "    psql -h $$PGHOST -p $$PGPORT -U postgres skycat" && \
	  echo "Stop it with 'make cluster-stop' (its data is deleted)."

cluster-start: setup-citus install
	@scripts/citus-cluster.sh start

cluster-stop:
	@scripts/citus-cluster.sh destroy

# ---------------------------------------------------------------- benchmarks
bench: install
	bench/run.sh

# The nightly Association Pipeline suite alone (~30 min: three 20M-object nights and two baselines).
bench-ap: install
	BENCH=ap bench/run.sh

bench-drp: install
	BENCH=drp bench/run.sh

# One node vs the local Citus cluster (docs/benchmarks/cluster.md).
bench-cluster: setup-citus install
	BENCH=cluster bench/run.sh

# ---------------------------------------------------------------- housekeeping
fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean-clusters:
	@for n in test demo bench; do $(CLUSTER) destroy $$n; done
	@scripts/citus-cluster.sh destroy
