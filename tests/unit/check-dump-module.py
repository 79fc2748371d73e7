#!/usr/bin/env python3
"""Checks that the dump module compiles with nothing of its host in reach.

The module (dump/*.c, target/i386/arch_*.c) must build unchanged inside
QEMU 7.2, where system/, monitor/, hw/ and guestdump's other headers do not
exist. Each module source is compiled (syntax only) in a scratch tree that
holds just what both hosts provide: the module's own headers, the QAPI
layer (qapi/error.h and the generated qapi-types/commands/events headers),
qemu/bswap.h, config-host.h, GLib. Including anything else fails the test,
naming the file.

usage: check-dump-module.py SOURCE_ROOT BUILD_ROOT CC [CC_ARGS...]
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

# Paths relative to the source root (or build root for generated ones).
SHARED_HEADERS = [
    'include/qapi/error.h',
    'include/qapi/util.h',
    'include/qapi/qmp-dispatch.h',
    'include/qemu/bswap.h',
]
GENERATED_HEADERS = [
    ('qapi/qapi-types.h', 'qapi-types.h'),
    ('qapi/qapi-commands.h', 'qapi-commands.h'),
    ('qapi/qapi-events.h', 'qapi-events.h'),
    ('config-host.h', 'config-host.h'),
]


def copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    src_root, build_root, cc = sys.argv[1], sys.argv[2], sys.argv[3:]
    flags = subprocess.run(['pkg-config', '--cflags', 'glib-2.0', 'json-glib-1.0'],
                           check=True, capture_output=True, text=True).stdout.split()
    sources = sorted(glob.glob(os.path.join(src_root, 'dump', '*.c')) +
                     glob.glob(os.path.join(src_root, 'target/i386/arch_*.c')))
    if not sources:
        print('no module sources found under', src_root, file=sys.stderr)
        return 1
    failed = []
    with tempfile.TemporaryDirectory(prefix='dump-module-') as tmp:
        for h in glob.glob(os.path.join(src_root, 'include/sysemu/dump-*.h')):
            copy(h, os.path.join(tmp, 'include/sysemu', os.path.basename(h)))
        for h in SHARED_HEADERS:
            copy(os.path.join(src_root, h), os.path.join(tmp, h))
        for h, name in GENERATED_HEADERS:
            copy(os.path.join(build_root, h), os.path.join(tmp, 'gen', name))
        for h in glob.glob(os.path.join(src_root, 'dump', '*.h')):
            copy(h, os.path.join(tmp, 'dump', os.path.basename(h)))
        for s in sources:
            rel = os.path.relpath(s, src_root)
            copy(s, os.path.join(tmp, rel))
        for s in sources:
            rel = os.path.relpath(s, src_root)
            cmd = cc + ['-std=gnu11', '-D_GNU_SOURCE', '-fsyntax-only', '-Werror',
                        '-I', tmp, '-I', os.path.join(tmp, 'include'),
                        '-I', os.path.join(tmp, 'gen')] + flags + [
                        os.path.join(tmp, rel)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                failed.append(rel)
                print('%s does not compile with only the module and the QAPI '
                      'layer in reach:\n%s' % (rel, r.stderr), file=sys.stderr)
            else:
                print('ok', rel)
    if failed:
        print('FAILED:', ' '.join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
