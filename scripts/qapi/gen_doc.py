# QMP reference in Markdown, built from the schema's ## doc comments.
import re
import textwrap

from schema import ArrayType, Command, EnumType, Event, StructType


def type_ref(t):
    if t is None:
        return 'nothing'
    if isinstance(t, ArrayType):
        return '[%s]' % type_ref(t.element)
    if t.builtin:
        return '`%s`' % t.name
    return '[`%s`](#%s)' % (t.name, t.name.lower())


def _para(lines):
    text = '\n'.join(lines).strip('\n')
    return refs(text)


def refs(text):
    """@member in doc text names a member or definition: show it as code."""
    return re.sub(r'@([A-Za-z0-9_-]+)', r'`\1`', text)


def _member_rows(doc, members):
    rows = []
    for m in members:
        desc = ' '.join(l.strip() for l in (doc.args.get(m.name) if doc else [])
                        if l.strip())
        opt = ', optional' if m.optional else ''
        rows.append('- `%s` (%s%s): %s' % (m.name, type_ref(m.type), opt,
                                          refs(desc) or '*Not documented.*'))
    return rows


def _sections(doc):
    out = []
    for tag, lines in doc.sections:
        if tag == 'Returns':
            continue                # merged into the generated Returns line
        if tag.startswith('Example'):
            code = textwrap.dedent('\n'.join(lines)).strip('\n')
            out.append('**%s:**\n\n```\n%s\n```\n' % (tag, code))
        else:
            out.append('**%s:** %s\n' % (tag, _para(lines).strip()))
    return out


def _returns(ent):
    text = ''
    for tag, lines in (ent.doc.sections if ent.doc else []):
        if tag == 'Returns':
            text = _para(lines).strip()
    line = '**Returns:** %s' % type_ref(ent.ret_type)
    if text and text != 'nothing':
        line += ' — ' + text
    return line + '\n'


def gen_doc_md(schema, src):
    out = ['# QMP reference\n',
           'Generated from `%s` by `scripts/qapi`; the commands, events and '
           'types guestdump speaks over QMP.\n' % src]
    groups = [('Commands', Command), ('Events', Event),
              ('Types', (EnumType, StructType))]
    for title, kind in groups:
        out.append('## %s\n' % title)
        for ent in schema.entities:
            if not isinstance(ent, kind):
                continue
            doc = ent.doc
            out.append('### %s\n' % ent.name)
            if doc and doc.text():
                out.append(refs(doc.text()) + '\n')
            elif not doc:
                out.append('*Not documented.*\n')
            if isinstance(ent, EnumType):
                out.append('Values:\n')
                for v in ent.values:
                    desc = ' '.join(l.strip() for l in
                                    (doc.args.get(v, []) if doc else []) if l.strip())
                    out.append('- `%s`: %s' % (v, refs(desc) or '*Not documented.*'))
                out.append('')
            elif isinstance(ent, StructType):
                out.append('Members:\n')
                out.extend(_member_rows(doc, ent.members) or ['- none'])
                out.append('')
            else:
                members = ent.arg_type.members if ent.arg_type else []
                out.append('Arguments:\n' if isinstance(ent, Command)
                           else 'Data:\n')
                out.extend(_member_rows(doc, members) or ['- none'])
                out.append('')
                if isinstance(ent, Command):
                    out.append(_returns(ent))
            if doc:
                out.extend(_sections(doc))
    return '\n'.join(out) + '\n'
