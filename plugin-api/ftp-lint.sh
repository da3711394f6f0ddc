#!/bin/sh
# Checks built product plugins against the ABI's rules:
#   - ftp_plugin_entry is the only exported symbol;
#   - no atexit/at_quick_exit/__cxa_atexit, pthread_create or pthread_key_create imports;
#   - no DF_1_NODELETE flag (the host must be able to unload it).
# Usage: farutech-plugin-lint plugin.so...   (ftp-lint.sh in the source tree)
# Exit status 1 if any plugin breaks a rule.
set -u
status=0
for so in "$@"; do
    before=$status
    exports=$(nm -D --defined-only "$so" 2>/dev/null | awk '{print $NF}' | grep -v '^$' | sort -u)
    if [ "$exports" != "ftp_plugin_entry" ]; then
        echo "$so: exports must be exactly ftp_plugin_entry, found: $(echo "$exports" | tr '\n' ' ')"
        status=1
    fi
    imports=$(nm -D --undefined-only "$so" 2>/dev/null | awk '{print $NF}' | sed 's/@.*//')
    for bad in atexit at_quick_exit __cxa_atexit pthread_create pthread_key_create; do
        if echo "$imports" | grep -qx "$bad"; then
            echo "$so: imports $bad, which plugins must not use"
            status=1
        fi
    done
    if readelf -d "$so" 2>/dev/null | grep -q 'FLAGS_1.*NODELETE'; then
        echo "$so: has the NODELETE flag; the host could never unload it"
        status=1
    fi
    [ $status -eq "$before" ] && echo "$so: ok"
done
exit $status
