# Runs the QAPI generator on one test schema; its verdict must be the expected one.
"""Usage: check-schema.py GENERATOR CASE.json

A case with CASE.err next to it must fail with exit status 1 and exactly
that text on stderr; a case without must pass and generate C for every
definition it has."""
import os
import subprocess
import sys
import tempfile


def main():
    gen, case = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    folder, name = os.path.split(case)
    errfile = case[:-len('.json')] + '.err'
    with tempfile.TemporaryDirectory() as out:
        # Run from the case's folder so that messages name files as written.
        r = subprocess.run([sys.executable, gen, '-o', out, name], cwd=folder,
                           capture_output=True, text=True)
        if os.path.exists(errfile):
            with open(errfile, encoding='utf-8') as f:
                want = f.read().strip()
            got = r.stderr.strip()
            if r.returncode != 1 or got != want:
                print('FAIL %s: exit %d, stderr:\n%s\nexpected exit 1 and:\n%s'
                      % (name, r.returncode, got, want))
                return 1
            if os.listdir(out):
                print('FAIL %s: a rejected schema still wrote %s'
                      % (name, os.listdir(out)))
                return 1
            return 0
        if r.returncode != 0 or r.stderr:
            print('FAIL %s: exit %d, stderr:\n%s' % (name, r.returncode, r.stderr))
            return 1
        with open(os.path.join(out, 'qapi-types.h'), encoding='utf-8') as f:
            types = f.read()
        with open(os.path.join(out, 'qapi-commands.h'), encoding='utf-8') as f:
            cmds = f.read()
        with open(os.path.join(out, 'qapi-events.h'), encoding='utf-8') as f:
            events = f.read()
        expect_file = case[:-len('.json')] + '.expect'
        if os.path.exists(expect_file):
            # One C fragment per line, each must appear in the generated headers.
            with open(expect_file, encoding='utf-8') as f:
                for line in f:
                    line = line.rstrip('\n')
                    if line and not line.startswith('#') and \
                            line not in types + cmds + events:
                        print('FAIL %s: generated headers lack: %s' % (name, line))
                        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
