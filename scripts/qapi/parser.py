# QAPI schema reader: the Python-literal-like dialect, includes and ## doc blocks.
import os
import re


class QAPIError(Exception):
    """A schema problem; str() is 'file:line: message' as editors expect."""

    def __init__(self, fname, line, msg):
        super().__init__(msg)
        self.fname = fname
        self.line = line
        self.msg = msg

    def __str__(self):
        return '%s:%d: %s' % (self.fname, self.line, self.msg)


class Doc:
    """One ## block: its symbol, free text, @member texts and tagged sections."""

    def __init__(self, fname, line):
        self.fname = fname
        self.line = line
        self.symbol = None
        self.body = []
        self.args = {}          # member name -> list of lines, in order
        self.sections = []      # (tag, [lines]) for Since:, Returns:, Example: ...

    def text(self):
        return '\n'.join(self.body).strip()


# Tags that open a section; the text after the colon belongs to it.
SECTION_TAGS = ('Since', 'Returns', 'Example', 'Examples', 'Note', 'Notes',
                'TODO', 'Errors')


class Expr:
    def __init__(self, fname, line, data, doc):
        self.fname = fname
        self.line = line
        self.data = data
        self.doc = doc


class Parser:
    """Reads one file; include directives recurse, each file at most once."""

    def __init__(self, fname, seen=None, incl_line=None, incl_from=None):
        self.fname = fname
        self.seen = seen if seen is not None else set()
        try:
            with open(fname, encoding='utf-8') as f:
                self.src = f.read()
        except OSError as e:
            if incl_from is None:
                raise QAPIError(fname, 1, "can't read schema file: %s"
                                % e.strerror)
            raise QAPIError(incl_from, incl_line,
                            "can't read include file '%s': %s"
                            % (os.path.basename(fname), e.strerror))
        except UnicodeDecodeError:
            raise QAPIError(fname, 1, 'schema file is not valid UTF-8')
        self.seen.add(os.path.realpath(fname))
        self.pos = 0
        self.line = 1
        self.tok = None
        self.val = None
        self.tok_line = 1
        self.pending_doc = None
        self.exprs = []
        self._parse()

    def err(self, msg, line=None):
        raise QAPIError(self.fname, line or self.tok_line, msg)

    # -- lexer ------------------------------------------------------------
    def _read_doc(self):
        # self.pos is at the first '#' of a "##" line.
        doc = Doc(self.fname, self.line)
        self._skip_line()
        while True:
            if self.pos >= len(self.src):
                self.err('documentation block is not terminated by ##', doc.line)
            end = self.src.find('\n', self.pos)
            end = len(self.src) if end < 0 else end
            raw = self.src[self.pos:end].strip()
            if raw == '##':
                self._skip_line()
                return doc
            if not raw.startswith('#'):
                self.err("documentation comment lines must start with '#'",
                         self.line)
            if raw != '#' and not raw.startswith('# '):
                self.err("documentation comment text must follow '# '",
                         self.line)
            self._doc_line(doc, raw[2:], self.line)
            self._skip_line()

    def _doc_line(self, doc, text, line):
        stripped = text.strip()
        if doc.symbol is None and not doc.body and not doc.args \
                and not doc.sections:
            m = re.match(r'^@([A-Za-z0-9_-]+):\s*$', stripped)
            if m:
                doc.symbol = m.group(1)
                return
            if stripped.startswith('='):
                doc.symbol = ''         # a section heading, documents nothing
                doc.body.append(stripped)
                return
        m = re.match(r'^@([A-Za-z0-9_-]+):\s?(.*)$', stripped)
        if m and not text.startswith(' ') and not doc.sections:
            name = m.group(1)
            if name in doc.args:
                self.err("'@%s:' is documented twice" % name, line)
            doc.args[name] = [m.group(2)]
            return
        m = re.match(r'^([A-Z][a-z]+):\s?(.*)$', stripped)
        if m and m.group(1) in SECTION_TAGS and not text.startswith(' '):
            doc.sections.append((m.group(1), [m.group(2)]))
            return
        if doc.sections:
            doc.sections[-1][1].append(text)
        elif doc.args and (text.startswith(' ') or stripped):
            last = list(doc.args)[-1]
            if stripped == '':
                doc.args[last].append('')
            elif text.startswith(' '):
                doc.args[last].append(stripped)
            else:
                doc.body.append(text)
        else:
            doc.body.append(text)

    def _skip_line(self):
        end = self.src.find('\n', self.pos)
        if end < 0:
            self.pos = len(self.src)
        else:
            self.pos = end + 1
            self.line += 1

    def _next(self):
        src = self.src
        while True:
            if self.pos >= len(src):
                self.tok = None
                self.tok_line = self.line
                return
            c = src[self.pos]
            if c == '\n':
                self.line += 1
                self.pos += 1
            elif c in ' \t\r':
                self.pos += 1
            elif c == '#':
                bol = src.rfind('\n', 0, self.pos) + 1
                at_bol = src[bol:self.pos].strip() == ''
                if at_bol and src.startswith('##', self.pos) and \
                        src[self.pos:].split('\n', 1)[0].strip() == '##':
                    if self.pending_doc is not None:
                        self.err('documentation block is not followed by the '
                                 'definition it documents', self.pending_doc.line)
                    doc = self._read_doc()
                    if doc.symbol == '':
                        continue        # free-standing heading
                    self.pending_doc = doc
                else:
                    self._skip_line()
            else:
                break
        self.tok_line = self.line
        c = src[self.pos]
        if c in '{}[]:,':
            self.tok = c
            self.pos += 1
        elif c in '\'"':
            self._string(c)
        elif src.startswith('true', self.pos):
            self.tok, self.val = 'v', True
            self.pos += 4
        elif src.startswith('false', self.pos):
            self.tok, self.val = 'v', False
            self.pos += 5
        else:
            word = re.match(r'[^\s{}\[\]:,\'"#]+', src[self.pos:])
            self.err("stray '%s'" % (word.group(0) if word else c))

    def _string(self, quote):
        out = []
        self.pos += 1
        src = self.src
        while True:
            if self.pos >= len(src) or src[self.pos] == '\n':
                self.err('missing terminating %s' % quote)
            c = src[self.pos]
            self.pos += 1
            if c == quote:
                break
            if c == '\\':
                if self.pos >= len(src):
                    self.err('missing terminating %s' % quote)
                e = src[self.pos]
                self.pos += 1
                if e in '\\/\'"':
                    out.append(e)
                else:
                    self.err("unknown escape \\%s" % e)
                continue
            if ord(c) < 32:
                self.err('control character in string')
            out.append(c)
        self.tok, self.val = 's', ''.join(out)

    # -- grammar ----------------------------------------------------------
    def _value(self):
        if self.tok == '{':
            return self._object()
        if self.tok == '[':
            return self._array()
        if self.tok in ('s', 'v'):
            v = self.val
            self._next()
            return v
        self.err('expected a value, found %s' % self._tokname())

    def _tokname(self):
        return 'end of file' if self.tok is None else repr(self.tok) \
            if self.tok not in ('s', 'v') else 'a %s' % (
                'string' if self.tok == 's' else 'boolean')

    def _object(self):
        obj = {}
        self._next()
        if self.tok == '}':
            self._next()
            return obj
        while True:
            if self.tok != 's':
                self.err('expected a string key, found %s' % self._tokname())
            key, line = self.val, self.tok_line
            if key in obj:
                self.err("duplicate key '%s'" % key, line)
            self._next()
            if self.tok != ':':
                self.err("expected ':' after key '%s'" % key)
            self._next()
            obj[key] = self._value()
            if self.tok == '}':
                self._next()
                return obj
            if self.tok != ',':
                self.err("expected ',' or '}', found %s" % self._tokname())
            self._next()

    def _array(self):
        arr = []
        self._next()
        if self.tok == ']':
            self._next()
            return arr
        while True:
            arr.append(self._value())
            if self.tok == ']':
                self._next()
                return arr
            if self.tok != ',':
                self.err("expected ',' or ']', found %s" % self._tokname())
            self._next()

    def _parse(self):
        self._next()
        while self.tok is not None:
            line = self.tok_line
            if self.tok != '{':
                self.err('expected a definition ({...}), found %s'
                         % self._tokname())
            doc, self.pending_doc = self.pending_doc, None
            data = self._object()
            if 'include' in data:
                if len(data) != 1:
                    self.err("'include' must stand alone", line)
                inc = data['include']
                if not isinstance(inc, str):
                    self.err("'include' needs a file name string", line)
                path = os.path.join(os.path.dirname(self.fname), inc)
                if doc is not None:
                    self.err('documentation block before an include', doc.line)
                if os.path.realpath(path) in self.seen:
                    continue
                sub = Parser(path, self.seen, line, self.fname)
                self.exprs.extend(sub.exprs)
                continue
            self.exprs.append(Expr(self.fname, line, data, doc))
        if self.pending_doc is not None:
            self.err('documentation block at end of file documents nothing',
                     self.pending_doc.line)
