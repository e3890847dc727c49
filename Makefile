# approval: human approval workflows inside PostgreSQL (PGXS build)
#
#   make demo        install what is missing, build, start ./.demo and walk through a workflow
#   make test        every suite (pg_regress, isolation, pgTAP, TAP) on a throwaway cluster
#   make bench       pgbench figures into doc/performance.md
#   make model       the randomized model test (test/t/010_model.pl) run long
#   make install     install into the PostgreSQL that pg_config names (the extension,
#                    and the approval_listen program into pg_config --bindir)
#   make installcheck  pg_regress + isolation + pgTAP against a running server (PGHOST/PGPORT)

EXTENSION  = approval
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = approval
OBJS = \
	src/approval.o \
	src/actor.o \
	src/claims.o \
	src/delegation.o \
	src/spi_util.o \
	src/define.o \
	src/workflow.o \
	src/graph.o \
	src/condition.o \
	src/event.o \
	src/audit.o \
	src/replay.o \
	src/checkpoint.o \
	src/purge.o \
	src/horizon.o \
	src/notify.o \
	src/relay.o \
	src/target.o \
	src/request.o \
	src/engine.o \
	src/eligibility.o \
	src/decide.o \
	src/admin.o \
	src/token.o \
	src/token_revoke.o \
	src/submit.o \
	src/route.o \
	src/visibility.o \
	src/callback.o \
	src/calendar.o \
	src/business_time.o \
	src/launcher.o \
	src/worker.o \
	src/schedule.o \
	src/timer.o \
	src/tick.o \
	src/govern.o \
	src/govern_apply.o

# The current version's install script is built from sql/approval.sql; the
# install scripts of earlier releases are frozen as they shipped, and every
# release ships the upgrade script from the one before.
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA       = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
DOCS       = $(wildcard doc/*.md)

# pg_regress suites, in run order (sql/NAME.sql, expected/NAME.out)
REGRESS_TESTS = $(shell cat test/regress_schedule)
# isolation specs (test/isolation/NAME.spec, test/isolation/expected/NAME.out)
ISOLATION_TESTS = $(basename $(notdir $(wildcard test/isolation/*.spec)))

PG_CONFIG ?= pg_config

# -Wall -Wextra everywhere; -Werror in CI (CI=true) or when WERROR=1.
PG_CPPFLAGS = -I$(srcdir)/src -DAPPROVAL_VERSION='"$(EXTVERSION)"'
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
              $(if $(filter true 1,$(CI) $(WERROR)),-Werror)

# The suites start their own servers; see tools/run-tests.sh.
NO_INSTALLCHECK = 1

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): src/approval.h src/engine.h src/calendar.h src/replay.h
src/launcher.o src/worker.o src/relay.o: src/worker.h
src/govern.o src/govern_apply.o: src/govern.h
# APPROVAL_VERSION comes from approval.control
src/worker.o: $(EXTENSION).control

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql $(EXTENSION).control
	cp $< $@

# The approval_listen program (DESIGN §7) has its own PGXS Makefile in
# src/listen; it is built, installed and cleaned with the extension.
# (CI and WERROR reach it through the environment and MAKEFLAGS.)
.PHONY: listen listen-install listen-uninstall listen-clean
all: listen
install: listen-install
uninstall: listen-uninstall
clean: listen-clean

listen:
	$(MAKE) -C src/listen PG_CONFIG='$(PG_CONFIG)'
listen-install: listen
	$(MAKE) -C src/listen PG_CONFIG='$(PG_CONFIG)' install
listen-uninstall:
	$(MAKE) -C src/listen PG_CONFIG='$(PG_CONFIG)' uninstall
listen-clean:
	$(MAKE) -C src/listen PG_CONFIG='$(PG_CONFIG)' clean

.PHONY: test installcheck demo demo-stop bench model bootstrap check-version print-%

# approval.control is the one place the version is written; META.json must agree.
check-version:
	@n=$$(grep -c '"version": "$(EXTVERSION)"' META.json); \
	if [ "$$n" -ne 2 ]; then \
		echo "META.json does not carry version $(EXTVERSION) of approval.control (twice: the distribution and provides.approval)" >&2; \
		exit 1; \
	fi

# Install the Debian packages the build and the suites need (no-op when present).
bootstrap:
	@tools/bootstrap.sh

test: bootstrap check-version
	$(MAKE) all
	tools/as-root.sh $(MAKE) install
	tools/run-tests.sh --regress "$(REGRESS_TESTS)" --isolation "$(ISOLATION_TESTS)"

installcheck:
	tools/run-tests.sh --existing --regress "$(REGRESS_TESTS)" --isolation "$(ISOLATION_TESTS)"

demo: bootstrap
	$(MAKE) all
	tools/as-root.sh $(MAKE) install
	tools/demo.sh start

demo-stop:
	tools/demo.sh stop

bench: bootstrap
	$(MAKE) all
	tools/as-root.sh $(MAKE) install
	tools/bench.sh

# The randomized model test alone, long: APPROVAL_MODEL_OPS operations with
# seed APPROVAL_MODEL_SEED ("random": from the clock; the test prints it, and
# that seed reproduces a failure).  make test runs it at its default size.
APPROVAL_MODEL_OPS ?= 50000
APPROVAL_MODEL_SEED ?= random
model: bootstrap
	$(MAKE) all
	tools/as-root.sh $(MAKE) install
	APPROVAL_MODEL_SEED=$(APPROVAL_MODEL_SEED) APPROVAL_MODEL_OPS=$(APPROVAL_MODEL_OPS) \
	    tools/run-tests.sh --regress "" --isolation "" --pgtap "" --tap 010_model

print-%:
	@echo '$($*)'
