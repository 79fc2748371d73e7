# QAPI schema model: checks the parsed definitions and resolves type references.
import re

from parser import Parser, QAPIError

C_KEYWORDS = set('''
auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof
static struct switch typedef union unsigned void volatile while _Bool
_Complex _Imaginary bool true false asm typeof errno unix linux
'''.split())


def c_name(name, protect=True):
    """A schema name as a C identifier: '-' and '.' become '_'."""
    out = re.sub(r'[^A-Za-z0-9_]', '_', name)
    if protect and (out in C_KEYWORDS or out[0].isdigit()):
        return 'q_' + out
    return out


def camel_to_upper(name):
    """CamelCase to QEMU's enum prefix.

    DumpGuestMemoryFormat -> DUMP_GUEST_MEMORY_FORMAT, QMPCapability -> QMP_CAPABILITY.
    """
    s = c_name(name, False)
    if s.isupper():
        return s
    out = []
    for i, ch in enumerate(s):
        if ch.isupper() and i > 0 and s[i - 1] != '_':
            nxt_lower = i + 1 < len(s) and s[i + 1].islower()
            if nxt_lower or s[i - 1].isdigit():
                out.append('_')
        out.append(ch)
    return ''.join(out).lstrip('_').upper()


class Info:
    def __init__(self, fname, line):
        self.fname = fname
        self.line = line

    def error(self, msg):
        return QAPIError(self.fname, self.line, msg)


class Type:
    builtin = False
    is_pointer = True      # held by pointer in structs and lists

    def c_type(self):
        return self.c_name + ' *'

    def c_param_type(self):
        return 'const ' + self.c_name + ' *'


class BuiltinType(Type):
    builtin = True

    def __init__(self, name, c_type, json_type, is_pointer):
        self.name = name
        self.c_name = name          # qapi_in_int etc. live in the runtime
        self._c_type = c_type
        self.json_type = json_type
        self.is_pointer = is_pointer
        self.doc = None
        self.info = None

    def c_type(self):
        return self._c_type

    def c_param_type(self):
        if self.name == 'str':
            return 'const char *'
        return self._c_type


BUILTINS = [
    BuiltinType('str', 'char *', 'string', True),
    BuiltinType('int', 'int64_t', 'int', False),
    BuiltinType('int64', 'int64_t', 'int', False),
    BuiltinType('uint64', 'uint64_t', 'int', False),
    BuiltinType('bool', 'bool', 'boolean', False),
    BuiltinType('number', 'double', 'number', False),
    BuiltinType('any', 'JsonNode *', 'value', True),
]


class EnumType(Type):
    is_pointer = False

    def __init__(self, name, values, info, doc):
        self.name = name
        self.c_name = c_name(name)
        self.values = values
        self.info = info
        self.doc = doc
        self.prefix = camel_to_upper(name)

    def c_type(self):
        return self.c_name

    def c_param_type(self):
        return self.c_name

    def member_c(self, value):
        return '%s_%s' % (self.prefix, c_name(value, False).upper())


class Member:
    def __init__(self, name, type_name, optional, info):
        self.name = name
        self.type_name = type_name
        self.optional = optional
        self.info = info
        self.type = None
        self.c_name = c_name(name)

    @property
    def has_flag(self):
        """Optional scalars carry has_<name>; optional pointers are NULL when absent."""
        return self.optional and not self.type.is_pointer


class StructType(Type):
    def __init__(self, name, members, info, doc, implicit=False):
        self.name = name
        self.c_name = c_name(name)
        self.members = members
        self.info = info
        self.doc = doc
        self.implicit = implicit


class ArrayType(Type):
    def __init__(self, element):
        self.element = element
        self.name = element.name + 'List'
        self.c_name = c_name(self.name)
        self.info = None
        self.doc = None


class Command:
    def __init__(self, name, arg_type, ret_type, gen, info, doc):
        self.name = name
        self.c_name = c_name(name)
        self.arg_type = arg_type
        self.ret_type = ret_type
        self.gen = gen
        self.info = info
        self.doc = doc


class Event:
    def __init__(self, name, arg_type, info, doc):
        self.name = name
        self.c_name = c_name(name)
        self.arg_type = arg_type
        self.info = info
        self.doc = doc


TYPE_NAME = re.compile(r'^[A-Z][A-Za-z0-9]*$')
EVENT_NAME = re.compile(r'^[A-Z][A-Z0-9_]*$')
LOWER_NAME = re.compile(r'^[a-z][a-z0-9_-]*$')
ENUM_VALUE = re.compile(r'^[a-z0-9][a-z0-9_-]*$')

ALLOWED_KEYS = {
    'enum': {'enum', 'data'},
    'struct': {'struct', 'data'},
    'command': {'command', 'data', 'returns', 'gen'},
    'event': {'event', 'data'},
}


class Schema:
    def __init__(self, fname):
        self.fname = fname
        self.entities = []          # user definitions in schema order
        self.types = {b.name: b for b in BUILTINS}
        self.arrays = {}
        self.commands = []
        self.events = []
        self._names = {}
        exprs = Parser(fname).exprs
        pending = []
        for e in exprs:
            pending.append(self._define(e))
        for ent in self.entities:
            self._resolve(ent)
        self._check_docs()

    # -- definitions ------------------------------------------------------
    def _define(self, e):
        info = Info(e.fname, e.line)
        data = e.data
        metas = [k for k in ALLOWED_KEYS if k in data]
        if len(metas) != 1:
            if not metas:
                bad = sorted(data)[0] if data else None
                raise info.error(
                    "unknown definition key '%s'; expected one of 'enum', "
                    "'struct', 'command', 'event', 'include'" % bad if bad
                    else 'empty definition')
            raise info.error("definition has more than one of %s"
                             % ', '.join("'%s'" % m for m in metas))
        meta = metas[0]
        name = data[meta]
        if not isinstance(name, str):
            raise info.error("'%s' needs a name string" % meta)
        for k in data:
            if k not in ALLOWED_KEYS[meta]:
                raise info.error("%s '%s' has unknown key '%s'" % (meta, name, k))
        if meta in ('enum', 'struct'):
            if not TYPE_NAME.match(name):
                raise info.error("%s name '%s' must be CamelCase" % (meta, name))
        elif meta == 'event':
            if not EVENT_NAME.match(name):
                raise info.error("event name '%s' must be ALL_CAPS" % name)
        elif not LOWER_NAME.match(name):
            raise info.error("command name '%s' must be lower-case, with '-'"
                             % name)
        if name in self._names or name in self.types:
            prev = self._names.get(name)
            where = ' (first at %s:%d)' % (prev.fname, prev.line) if prev else ''
            raise info.error("'%s' is already defined%s" % (name, where))
        self._names[name] = info
        if e.doc is not None and e.doc.symbol != name:
            raise QAPIError(e.doc.fname, e.doc.line,
                            "documentation block is for '%s', but it precedes "
                            "'%s'" % (e.doc.symbol, name))

        if meta == 'enum':
            if 'data' not in data:
                raise info.error("enum '%s' lacks 'data'" % name)
            vals = data['data']
            if not isinstance(vals, list) or not vals:
                raise info.error("enum '%s': 'data' must be a non-empty list"
                                 % name)
            seen = set()
            for v in vals:
                if not isinstance(v, str):
                    raise info.error("enum '%s': values must be strings" % name)
                if not ENUM_VALUE.match(v):
                    raise info.error("enum '%s': bad value name '%s'" % (name, v))
                if c_name(v, False).upper() in seen:
                    raise info.error("enum '%s': value '%s' is defined twice"
                                     % (name, v))
                seen.add(c_name(v, False).upper())
            ent = EnumType(name, vals, info, e.doc)
            self.types[name] = ent
        elif meta == 'struct':
            if 'data' not in data:
                raise info.error("struct '%s' lacks 'data'" % name)
            members = self._members(data['data'], info, "struct '%s'" % name)
            ent = StructType(name, members, info, e.doc)
            self.types[name] = ent
        elif meta == 'command':
            gen = data.get('gen', True)
            if gen is not True and gen is not False:
                raise info.error("command '%s': 'gen' must be true or false"
                                 % name)
            arg = self._args(data, info, 'command', name)
            ret = data.get('returns')
            if ret is not None:
                self._check_type_ref(ret, info, "command '%s': 'returns'" % name)
            ent = Command(name, arg, ret, gen, info, e.doc)
            self.commands.append(ent)
        else:
            arg = self._args(data, info, 'event', name)
            ent = Event(name, arg, info, e.doc)
            self.events.append(ent)
        self.entities.append(ent)
        return ent

    def _args(self, data, info, meta, name):
        if 'data' not in data:
            return None
        d = data['data']
        if isinstance(d, str):
            return d                # a named struct, resolved later
        members = self._members(d, info, "%s '%s'" % (meta, name))
        st = StructType('q_obj_%s-arg' % name, members, info, None, True)
        return st

    def _check_type_ref(self, ref, info, what):
        if isinstance(ref, list):
            if len(ref) != 1 or not isinstance(ref[0], str):
                raise info.error('%s: an array type is written as [\'Type\']'
                                 % what)
        elif not isinstance(ref, str):
            raise info.error('%s: a type name or [\'Type\'] is expected' % what)

    def _members(self, d, info, what):
        if not isinstance(d, dict):
            raise info.error("%s: 'data' must be an object of members" % what)
        members = []
        seen = set()
        for key, ty in d.items():
            optional = key.startswith('*')
            mname = key[1:] if optional else key
            if not LOWER_NAME.match(mname):
                raise info.error("%s: bad member name '%s'" % (what, key))
            if c_name(mname) in seen:
                raise info.error("%s: member '%s' is defined twice"
                                 % (what, mname))
            if mname.startswith('has-') or mname.startswith('has_'):
                raise info.error("%s: member name '%s' clashes with the has_ "
                                 "flags of optional members" % (what, mname))
            seen.add(c_name(mname))
            self._check_type_ref(ty, info, "%s: member '%s'" % (what, mname))
            members.append(Member(mname, ty, optional, info))
        return members

    # -- resolution -------------------------------------------------------
    def lookup(self, ref, info, what):
        if isinstance(ref, list):
            elem = self.lookup(ref[0], info, what)
            if isinstance(elem, ArrayType):
                raise info.error('%s: arrays of arrays are not supported' % what)
            arr = self.arrays.get(elem.name)
            if arr is None:
                arr = ArrayType(elem)
                self.arrays[elem.name] = arr
            return arr
        t = self.types.get(ref)
        if t is None:
            raise info.error("%s uses unknown type '%s'" % (what, ref))
        return t

    def _resolve_members(self, st, what):
        for m in st.members:
            m.type = self.lookup(m.type_name, m.info,
                                 "%s member '%s'" % (what, m.name))

    def _resolve(self, ent):
        if isinstance(ent, StructType):
            self._resolve_members(ent, "struct '%s'" % ent.name)
        elif isinstance(ent, (Command, Event)):
            kind = 'command' if isinstance(ent, Command) else 'event'
            what = "%s '%s'" % (kind, ent.name)
            if isinstance(ent.arg_type, str):
                t = self.lookup(ent.arg_type, ent.info, what + " 'data'")
                if not isinstance(t, StructType):
                    raise ent.info.error("%s: 'data' must name a struct" % what)
                ent.arg_type = t
            elif ent.arg_type is not None:
                self._resolve_members(ent.arg_type, what)
            if isinstance(ent, Command) and ent.ret_type is not None:
                ent.ret_type = self.lookup(ent.ret_type, ent.info,
                                           what + " 'returns'")

    def _check_docs(self):
        for ent in self.entities:
            doc = ent.doc
            if doc is None:
                continue
            names = []
            if isinstance(ent, EnumType):
                names = ent.values
            elif isinstance(ent, StructType):
                names = [m.name for m in ent.members]
            elif ent.arg_type is not None:
                names = [m.name for m in ent.arg_type.members]
            for a in doc.args:
                if a not in names:
                    raise QAPIError(doc.fname, doc.line,
                                    "documentation of '%s' describes '@%s', "
                                    "which it does not have" % (ent.name, a))

    # -- queries for generators ---------------------------------------------
    def user_types(self):
        """Named enums and structs, then implicit argument structs, in order."""
        out = [e for e in self.entities if isinstance(e, (EnumType, StructType))]
        for e in self.entities:
            if isinstance(e, (Command, Event)) and \
                    isinstance(e.arg_type, StructType) and e.arg_type.implicit:
                out.append(e.arg_type)
        return out

    def array_types(self):
        return list(self.arrays.values())
