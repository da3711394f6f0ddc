#!/bin/sh
# Builds the Debian packages farutech-host, farutech-products and farutech-plugin-dev (with
# their -dbgsym debug symbols) from this tree, a release build, and checks them with lintian:
#
#   ./packaging/deb.sh [OUTDIR]        (default build/deb)
#
# The .deb files, the .changes, .buildinfo and lintian.txt land in OUTDIR. dpkg-buildpackage runs
# in a copy of the tree (the files git tracks or would track, as they are now) under OUTDIR, so
# debhelper's work files stay out of the checkout. Fails if lintian reports an error.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/build/deb}")
cd "$root"

./packaging/install-deps.sh
version=$(dpkg-parsechangelog -S Version)
src="$out/farutech-$version"
mkdir -p "$out"
# only what an earlier run left: OUTDIR may hold other files
rm -rf "$src" "$out"/farutech*.deb "$out"/farutech_*.changes "$out"/farutech_*.buildinfo "$out/lintian.txt"
mkdir -p "$src"
if git rev-parse --git-dir >/dev/null 2>&1; then
    commit=$(git rev-parse --short HEAD)
    git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf - | tar -xf - -C "$src"
else
    commit=unknown
    tar --exclude=./build --exclude=./var -cf - . | tar -xf - -C "$src"
fi
# the API reference's renderer: installed by packaging/install-deps.sh from the pinned npm
# package, not tracked, so copied on its own
renderer=docs/openapi/node_modules/redoc/bundles/redoc.standalone.js
if [ ! -f "$renderer" ]; then
    echo "deb: $renderer is missing; run packaging/install-deps.sh" >&2
    exit 1
fi
mkdir -p "$src/$(dirname "$renderer")"
cp "$renderer" "$src/$renderer"

(cd "$src" && FT_GIT_COMMIT="$commit" DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -b -us -uc)
rm -rf "$src"

status=0
lintian --fail-on error "$out"/*.changes >"$out/lintian.txt" 2>&1 || status=$?
cat "$out/lintian.txt"
ls -l "$out"/*.deb
exit $status
