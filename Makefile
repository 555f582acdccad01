# looplab: the two commands the README promises, and a few more.
#   make bench   thread-per-connection vs the event loop: a quick sweep, table + plot
#   make test    fmt check, clippy -D warnings, build examples, cross-check, then every
#                test and doctest, ending with one total line (installs chromium for the
#                browser tests and tmux for the terminal test when they are missing)
#   make cross-check   clippy -D warnings on crate, tests and examples for macOS and the
#                BSDs: type-checks the kqueue code this Linux machine cannot run

CARGO ?= cargo
OUT   ?= bench-out
CROSS_TARGETS ?= x86_64-apple-darwin aarch64-apple-darwin x86_64-unknown-freebsd x86_64-unknown-netbsd
# clippy never links, but build scripts still compile C for the target (criterion's
# alloca.c, which needs only <stddef.h> and <stdint.h>): the host's cc stands in, without
# the target flags (-arch ...) it does not know.
CROSS_CC ?= cc

.PHONY: test cross-check bench bench-full bench-timers fmt clippy doc

test:
	bash .ci/install-browser
	bash .ci/install-tmux
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --features peer-tokio -- -D warnings
	$(CARGO) clippy --no-default-features --lib -- -D warnings   # the core alone: mio, libc, slab, socket2, crossbeam-channel
	$(CARGO) build --examples
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps   # every intra-doc link resolves
	$(MAKE) cross-check
	bash .ci/tests-with-total "$(CARGO)"

cross-check:
	bash .ci/install-targets $(CROSS_TARGETS)
	@set -e; for t in $(CROSS_TARGETS); do \
	  echo "TARGET_CC=$(CROSS_CC) CRATE_CC_NO_DEFAULTS=1 cargo clippy --target $$t --all-targets -- -D warnings"; \
	  TARGET_CC=$(CROSS_CC) CRATE_CC_NO_DEFAULTS=1 \
	    $(CARGO) clippy --target $$t --all-targets -- -D warnings; \
	done

bench:
	$(CARGO) run --release -- bench --out $(OUT)

bench-full:
	$(CARGO) run --release -- bench --full --out $(OUT)

bench-timers:
	$(CARGO) run --release -- bench --timers

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps
