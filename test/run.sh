#!/usr/bin/env bash
# The test command (`npm test`): provisions the real tools the tests use, compiles the
# package, and runs every test file, listed explicitly (Node 20 expands no globs and passes
# when it finds no test). Servers (docker-registry, gadget serve, token issuer, fault proxy) are started by
# the tests themselves on 127.0.0.1 at free ports, and stopped by them.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A NEEDS=(
  [clang]=clang [llvm-strip]=llvm [bpftool]=bpftool [wat2wasm]=wabt
  [skopeo]=skopeo [docker-registry]=docker-registry [htpasswd]=apache2-utils
  [umoci]=umoci [openssl]=openssl [xz]=xz-utils [chromium]=chromium [script]=bsdutils
)
missing=()
for cmd in "${!NEEDS[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDS[$cmd]}"); done
[ -f /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
if [ ${#missing[@]} -gt 0 ]; then
  packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ]; then
    echo "test: installing ${packages}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${packages} >/dev/null
  else
    echo "test: missing tools. Install them with:" >&2
    echo "  sudo apt-get install -y ${packages}" >&2
    exit 2
  fi
fi

# A skip is not a pass: on CI (CI=true) the fixtures and the kernel file the suite needs must
# be there, and the run fails when any test skipped. Locally, a missing one is said and skipped.
# ../shared beside the repository, or (in a git worktree) beside the main checkout, as the tests
# find it (test/helpers/paths.ts).
shared=../shared
if [ ! -d "$shared" ] && common=$(git rev-parse --git-common-dir 2>/dev/null) && [ -d "$(dirname "$common")/../shared" ]; then
  shared="$(dirname "$common")/../shared"
fi
absent=()
for f in "$shared/fixtures/ig-signed-store/layout/index.json" "$shared/fixtures/ig-gadget-metadata"; do
  [ -e "$f" ] || absent+=("$f: Inspektor Gadget's fixtures; check out the project's shared folder beside this repository as ../shared (see ../shared/fixtures/README.md)")
done
[ -r /sys/kernel/btf/vmlinux ] || absent+=("/sys/kernel/btf/vmlinux: the kernel's BTF; run on a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's and most distributions' kernels are), or in a container on such a host")
if [ ${#absent[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "test: on CI every test must run, and these are missing:" >&2
    printf '  %s\n' "${absent[@]}" >&2
    exit 2
  fi
  echo "test: these are missing, so the tests that need them will skip (on CI, with CI=true, this is an error):" >&2
  printf '  %s\n' "${absent[@]}" >&2
fi

npm run --silent build

TESTS=(
  test/oci.test.ts
  test/json-keys.test.ts
  test/tar.test.ts
  test/store.test.ts
  test/store-concurrency.test.ts
  test/store-safety.test.ts
  test/store-damaged-index.test.ts
  test/store-missing.test.ts
  test/store-crash.test.ts
  test/store-crash-writers.test.ts
  test/list-stream.test.ts
  test/transfer.test.ts
  test/export-target.test.ts
  test/cli.test.ts
  test/cli-help.test.ts
  test/cli-contract.test.ts
  test/architecture.test.ts
  test/runner.test.ts
  test/init.test.ts
  test/config-store.test.ts
  test/watch.test.ts
  test/config-hostile.test.ts
  test/metadata.test.ts
  test/metadata-object.test.ts
  test/content.test.ts
  test/build-image.test.ts
  test/build.test.ts
  test/build-sources.test.ts
  test/ig-gadgets.test.ts
  test/build-crash.test.ts
  test/build-folders.test.ts
  test/build-hostile.test.ts
  test/build-cache.test.ts
  test/verify.test.ts
  test/verify-corpus.test.ts
  test/annotate.test.ts
  test/signature.test.ts
  test/secretbox.test.ts
  test/keyless.test.ts
  test/conformance.test.ts
  test/sign.test.ts
  test/registry.test.ts
  test/registry-auth.test.ts
  test/sync.test.ts
  test/sync-auth.test.ts
  test/ref-credentials.test.ts
  test/push-step.test.ts
  test/sync-faults.test.ts
  test/sync-chaos.test.ts
  test/sync-plan.test.ts
  test/sync-nothing.test.ts
  test/sync-signature-named.test.ts
  test/sync-interop.test.ts
  test/sync-config.test.ts
  test/sync-bundles.test.ts
  test/sync-requests.test.ts
  test/verify-remote.test.ts
  test/serve-conformance.test.ts
  test/serve.test.ts
  test/serve-page.test.ts
  test/remote-read.test.ts
  test/multi-tag.test.ts
  test/progress.test.ts
)
# A set, not `printf | grep -q`: under pipefail grep's early exit can fail printf with SIGPIPE.
declare -A LISTED=()
for f in "${TESTS[@]}"; do
  [ -f "$f" ] || { echo "test: listed file $f does not exist" >&2; exit 2; }
  LISTED[$f]=1
done
for f in test/*.test.ts; do
  [ -n "${LISTED[$f]:-}" ] || { echo "test: $f is not listed in test/run.sh" >&2; exit 2; }
done
[ ${#TESTS[@]} -gt 0 ] || { echo "test: no test files" >&2; exit 2; }

if [ "${CI:-}" != true ]; then
  exec node --import tsx --test --test-reporter=spec "$@" "${TESTS[@]}"
fi
# On CI a TAP copy of the report is kept to count the skips (tests left out by a
# --test-name-pattern given on the command line are not skips).
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
status=0
node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "$@" "${TESTS[@]}" || status=$?
skips=$(grep -E '^ *(not )?ok [0-9]+ - .* # (SKIP|TODO)' "$tap" | grep -v '# SKIP test name does not match pattern' || true)
if [ -n "$skips" ]; then
  echo "test: on CI a skip is a failure; these tests skipped:" >&2
  printf '%s\n' "$skips" | sed 's/^ */  /' >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
