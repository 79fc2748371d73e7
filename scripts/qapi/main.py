# QAPI generator entry point: schema in, C sources / Markdown reference out.
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from parser import QAPIError  # noqa: E402
from schema import Schema  # noqa: E402
import gen_c  # noqa: E402
import gen_doc  # noqa: E402
import gen_introspect  # noqa: E402

C_OUTPUTS = {
    'qapi-types.h': gen_c.gen_types_h,
    'qapi-types.c': gen_c.gen_types_c,
    'qapi-visit.h': gen_c.gen_visit_h,
    'qapi-visit.c': gen_c.gen_visit_c,
    'qapi-commands.h': gen_c.gen_commands_h,
    'qapi-commands.c': gen_c.gen_commands_c,
    'qapi-events.h': gen_c.gen_events_h,
    'qapi-events.c': gen_c.gen_events_c,
    'qapi-introspect.c': gen_introspect.gen_introspect_c,
}


def _break_points(line):
    """Offsets just after ', ' or '(' outside string literals."""
    points, in_str, i = [], False, 0
    while i < len(line):
        c = line[i]
        if in_str:
            if c == '\\':
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == '(' and i + 1 < len(line) and line[i + 1] != ')':
            points.append(i + 1)
        elif line.startswith(', ', i):
            points.append(i + 2)
        i += 1
    return points


def fold_long_lines(text, limit=89):
    """Keeps generated C within the project's line length where it can."""
    out = []
    for line in text.split('\n'):
        indent = len(line) - len(line.lstrip(' '))
        cont = ' ' * (indent + 4)
        while len(line) > limit and not line.lstrip().startswith('#'):
            cut = [p for p in _break_points(line)
                   if p <= limit and p > len(cont) + 8]
            if not cut:
                break
            p = cut[-1]
            out.append(line[:p].rstrip())
            line = cont + line[p:].lstrip()
        out.append(line)
    return '\n'.join(out)


def write_if_changed(path, text):
    # Unchanged outputs keep their mtime, so ninja does not rebuild everything.
    try:
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return
    except OSError:
        pass
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser(description='Generate C and docs from a QAPI schema')
    ap.add_argument('schema')
    ap.add_argument('-o', '--output-dir', default='.')
    ap.add_argument('--doc', metavar='FILE', help='write the Markdown reference')
    ap.add_argument('--check', action='store_true',
                    help='only check the schema, write nothing')
    args = ap.parse_args(argv)
    try:
        schema = Schema(args.schema)
    except QAPIError as e:
        print(str(e), file=sys.stderr)
        return 1
    if args.check:
        return 0
    src = os.path.basename(args.schema)
    if args.doc:
        write_if_changed(args.doc, gen_doc.gen_doc_md(schema, src))
        return 0
    for name, fn in C_OUTPUTS.items():
        write_if_changed(os.path.join(args.output_dir, name),
                         fold_long_lines(fn(schema, src)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
