"""Message structure for FETCH: ENVELOPE, BODY/BODYSTRUCTURE, BODY[section] and BINARY.

RFC 3501 §6.4.5 and §7.4.2 define what is computed; RFC 3516 defines BINARY.
Every public function takes one message (or its header) as bytes. Stored mail
should already use CRLF; bare LF is converted first, so sizes, line counts and
section bytes always describe the CRLF form the client receives.

Choices where the RFCs leave room (each tested in tests/unit/test_imap_mime.py):

- The header runs to the first empty line, as in UW and Dovecot; with no empty
  line the whole message is header and the body is empty.
- Header values are unfolded (CRLF before WSP removed) and stripped of
  surrounding whitespace; RFC 2047 encoded words and RFC 2231 parameters are
  passed on as sent.
- An address without a domain gets UW's host ".MISSING-HOST-NAME.": a NIL host
  marks a group (§7.4.2), so NIL would make clients misread the address. A
  missing local part is the empty string. Without a display name, the last
  comment of the address becomes the personal name (`joe@example.org (Joe)`).
- Types, subtypes, parameter names and the disposition type are upper-case, as
  UW sends them; parameter values keep their case. A text part without a
  charset gets ("CHARSET" "US-ASCII") first in its list (RFC 2045 §5.2).
- A Content-Type that does not parse counts as absent (RFC 2045 §5.2).
- Line counts count CRLFs; an unterminated last line is not counted (Dovecot).
- Boundary lines must match exactly, apart from trailing whitespace (RFC 2046
  §5.1.1). A multipart in which no boundary line opens a part is described as
  holding one text/plain part with an empty MIME header whose content is the
  whole multipart body, so the grammar's "1*body" holds and the text stays
  reachable as BODY[n.1].
- Composite parts nested deeper than MAX_NESTING, or beyond MAX_PARTS entities,
  are described as opaque application/octet-stream leaves.
"""

import binascii
import functools
import re

from imap.wire import nstring, number, plist, string

# Composite entities (multipart, message/rfc822) nested deeper than this are not
# opened, and a message is described with at most this many entities: real mail
# stays far below both, hostile mail does not. Dovecot's parser defaults
# (MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS / _MAX_TOTAL_MIME_PARTS).
MAX_NESTING = 100
MAX_PARTS = 10000
# UW c-client's placeholder host for an address without a domain.
MISSING_HOST = b".MISSING-HOST-NAME."

_TEXT_PLAIN = (b"TEXT", b"PLAIN", ())
_MESSAGE_RFC822 = (b"MESSAGE", b"RFC822", ())
_OPAQUE = (b"APPLICATION", b"OCTET-STREAM", ())
_GROUP_END = (None, None, None, None)


class UnknownEncoding(ValueError):
    """BINARY of a part whose Content-Transfer-Encoding this server cannot decode (RFC 3516)."""

    def __init__(self, encoding):
        super().__init__("unknown content-transfer-encoding")
        self.encoding = encoding


class NotLeaf(ValueError):
    """BINARY of a multipart: only leaf parts have content to decode."""


# --- Line ends and header fields (RFC 5322 §2.1, §2.2) ---------------------

_LINE_END = re.compile(rb"\r?\n")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_QUOTED_PAIR = re.compile(rb"\\(.)", re.S)
# A field and its continuation lines (group 1 the name, group 2 the raw value),
# on the first line or, led by its LF, on a later one: searching for the LF is
# several times faster than a multi-line "^" on headers of a few kilobytes.
_FIELD_TEMPLATE = rb"(%s)[ \t]*:(.*(?:\n[ \t].*)*)"
_ENVELOPE_FIELDS = rb"date|subject|from|sender|reply-to|to|cc|bcc|in-reply-to|message-id"
_CONTENT_FIELDS = (rb"content-(?:type|transfer-encoding|id|description|md5|disposition"
                   rb"|language|location)")
# A whole field for HEADER.FIELDS; the last line of a header may lack its CRLF.
_RAW_FIELD = re.compile(rb"[^\n]*(?:\n|\Z)(?:[ \t][^\n]*(?:\n|\Z))*")


def _prepared(message):
    """What the parser reads: a PlainText as it is (LF form, see imap.plaintext),
    bytes with every line end as CRLF."""
    return message if hasattr(message, "eol") else _crlf(message)


def _eol(data):
    """The line end of parsed text: LF in a PlainText, else CRLF."""
    return getattr(data, "eol", b"\r\n")


def _octets(data, start, end):
    """Size on the wire of data[start:end]."""
    return data.wire_size(start, end) if hasattr(data, "eol") else end - start


def _crlf(data):
    """data with every line end as CRLF."""
    data = bytes(data)
    if data.count(b"\n") == data.count(b"\r\n"):
        return data
    return _LINE_END.sub(b"\r\n", data)


def _header_bounds(data, start, end):
    """(end of the header fields, start of the body) for the entity at data[start:end]."""
    eol = _eol(data)
    if data.startswith(eol, start, end):
        return start, start + len(eol)
    blank = data.find(eol + eol, start, end)
    if blank < 0:
        return end, end
    return blank + len(eol), blank + 2 * len(eol)


def _unfold(raw):
    return _FOLD.sub(b"", raw).strip(b" \t\r\n")


def _unescape(text):
    return _QUOTED_PAIR.sub(rb"\1", text) if b"\\" in text else text


@functools.lru_cache(maxsize=64)
def _field_patterns(names):
    """(first-line pattern, later-line pattern) for the fields a regex alternation names."""
    first_line = re.compile(_FIELD_TEMPLATE % names, re.I)
    return first_line, re.compile(b"\n" + first_line.pattern, re.I)


def _field_matches(names, data, start, end):
    """Matches of the named fields in the header fields at data[start:end], in order."""
    first_line, later_lines = _field_patterns(names)
    first = first_line.match(data, start, end)
    if first:
        yield first
    yield from later_lines.finditer(data, start, end)


def _first_fields(names, data, start, end):
    """{lower-case name: unfolded value} of the first occurrence of each named field."""
    if not isinstance(data, bytes):  # a PlainText: the header, and only it, as bytes
        data, start, end = data[start:end], 0, end - start
    found = {}
    for match in _field_matches(names, data, start, end):
        name = match.group(1).lower()
        if name not in found:
            found[name] = _unfold(match.group(2))
    return found


def split_message(message):
    """(header including its blank line, body) of a message."""
    data = _crlf(message)
    body = _header_bounds(data, 0, len(data))[1]
    return data[:body], data[body:]


def body_start(data):
    """Where the body of parsed text (a PlainText, or CRLF bytes) begins."""
    return _header_bounds(data, 0, len(data))[1]


def header_value(header, name):
    """The unfolded value of the first `name` field (any case), or None when absent."""
    data = _crlf(header)
    fields_end = _header_bounds(data, 0, len(data))[0]
    match = next(_field_matches(re.escape(bytes(name)), data, 0, fields_end), None)
    return None if match is None else _unfold(match.group(2))


# --- Comments, shared by addresses and MIME fields (RFC 5322 §3.2.2) --------

_COMMENT_SPECIAL = re.compile(rb"\\.|[()]", re.S)
_QUOTED_OR_COMMENT = re.compile(rb'"(?:[^"\\]|\\.)*"?|\(', re.S)


def _comment_span(value, pos):
    """(end of the comment text, index after the comment) for a comment whose "(" ends at pos."""
    depth = 1
    for match in _COMMENT_SPECIAL.finditer(value, pos):
        char = match.group()
        if char == b"(":
            depth += 1
        elif char == b")":
            depth -= 1
            if depth == 0:
                return match.start(), match.end()
    return len(value), len(value)


def _strip_comments(value):
    """value with each comment outside quoted strings replaced by a space."""
    if b"(" not in value:
        return value
    pieces, pos, kept = [], 0, 0
    while True:
        match = _QUOTED_OR_COMMENT.search(value, pos)
        if match is None:
            break
        pos = match.end()
        if match.group() == b"(":
            pieces += [value[kept:match.start()], b" "]
            pos = kept = _comment_span(value, pos)[1]
    pieces.append(value[kept:])
    return b"".join(pieces)


# --- Addresses (RFC 5322 §3.4, obs-route §4.4) -----------------------------

_ADDRESS_TOKEN = re.compile(rb"""
    (?P<space>[ \t\r\n]+)
  | "(?P<quoted>(?:[^"\\]|\\.)*)"?
  | (?P<literal>\[(?:[^\[\]\\]|\\.)*\]?)
  | (?P<special>[<>@,;:.])
  | (?P<comment>\()
  | (?P<atom>[^ \t\r\n"\[\]<>@,;:.()]+|.)
""", re.X | re.S)


def _address_tokens(value):
    """[(kind, text, spaced)]: kind is the special character itself or a token class name;
    spaced says whether whitespace or a comment came before."""
    tokens, pos, spaced = [], 0, False
    while pos < len(value):
        match = _ADDRESS_TOKEN.match(value, pos)
        kind, pos = match.lastgroup, match.end()
        if kind == "space":
            spaced = True
            continue
        if kind == "comment":
            text_end, pos = _comment_span(value, pos)
            tokens.append(("comment", _unescape(value[match.end():text_end]), True))
            spaced = True
            continue
        if kind == "quoted":
            text = _unescape(match.group("quoted"))
        else:
            text = match.group()
            if kind == "special":
                kind = text
        tokens.append((kind, text, spaced))
        spaced = False
    return tokens


def _join(tokens, space_around_dots):
    """Token texts, one space where the source had whitespace (around dots only if wanted)."""
    out, previous = [], None
    for kind, text, spaced in tokens:
        if spaced and out and (space_around_dots or b"." not in (kind, previous)):
            out.append(b" ")
        out.append(text)
        previous = kind
    return b"".join(out)


_WORD = rb"[^\s\"\[\]<>@,;:()\\]+"
# The common shapes, `local@domain`, `Name Words <local@domain>` and `"Quoted"
# <local@domain>`, each followed by a comma or the end: parsed by one regex
# with the result the token parser would give, at a fraction of its cost.
_SIMPLE_ADDRESS = re.compile(rb"""[ \t]*(?:
    (?P<local>%(word)s)@(?P<domain>%(word)s)
  | (?:"(?P<quoted>(?:[^"\\\r\n]|\\[^\r\n])*)"|(?P<phrase>%(word)s(?:[ \t]+%(word)s)*))?
    [ \t]*<(?P<angle_local>%(word)s)@(?P<angle_domain>%(word)s)>
)[ \t]*(?:,|\Z)""" % {b"word": _WORD}, re.X)
_SPACES = re.compile(rb"[ \t]+")


def _address_list(value):
    """Address tuples (name, adl, mailbox, host) of an address-list, groups as §7.4.2 markers."""
    simple = _simple_address_list(value)
    return _parsed_address_list(value) if simple is None else simple


def _simple_address_list(value):
    """The address list when every address has one of the common shapes, else None."""
    result, pos = [], 0
    while pos < len(value):
        match = _SIMPLE_ADDRESS.match(value, pos)
        if match is None:
            return None
        pos = match.end()
        if match.group("local"):
            result.append((None, None, match.group("local"), match.group("domain")))
            continue
        phrase, quoted = match.group("phrase", "quoted")
        name = _SPACES.sub(b" ", phrase) if phrase else _unescape(quoted or b"")
        result.append((name or None, None, match.group("angle_local"), match.group("angle_domain")))
    return result


def _parsed_address_list(value):
    """_address_list for any input, through the token parser."""
    result, item, in_group, in_angle = [], [], False, False
    for token in _address_tokens(value):
        kind = token[0]
        if kind in (b"<", b">"):
            in_angle = kind == b"<"
        elif not in_angle and kind in (b",", b";"):
            _add_mailbox(result, item)
            item = []
            if kind == b";" and in_group:
                result.append(_GROUP_END)
                in_group = False
            continue
        elif not in_angle and kind == b":" and not in_group:
            words = [t for t in item if t[0] != "comment"]
            result.append((None, None, _join(words, True), None))
            item, in_group = [], True
            continue
        item.append(token)
    _add_mailbox(result, item)
    if in_group:
        result.append(_GROUP_END)
    return result


def _add_mailbox(result, tokens):
    """Append the mailbox that tokens spell, if they hold more than comments (obs-addr-list)."""
    words = [t for t in tokens if t[0] != "comment"]
    if not words:
        return
    name, adl, spec = None, None, words
    for index, token in enumerate(words):
        if token[0] == b"<":
            name = _join(words[:index], True) or None
            adl, spec = _route(_angle_content(words[index + 1:]))
            break
    if name is None:
        comments = [t[1] for t in tokens if t[0] == "comment"]
        name = comments[-1] if comments and comments[-1] else None
    mailbox, host = _addr_spec(spec)
    result.append((name, adl, mailbox, host or MISSING_HOST))


def _angle_content(tokens):
    for index, token in enumerate(tokens):
        if token[0] == b">":
            return tokens[:index]
    return tokens


def _route(tokens):
    """(adl or None, addr-spec tokens): `<@a,@b:joe@c>` has the source route "@a,@b"."""
    if tokens and tokens[0][0] == b"@":
        for index, token in enumerate(tokens):
            if token[0] == b":":
                return b"".join(t[1] for t in tokens[:index]), tokens[index + 1:]
    return None, tokens


def _addr_spec(tokens):
    """(local part, domain or None) of addr-spec tokens."""
    for index, token in enumerate(tokens):
        if token[0] == b"@":
            domain = b"".join(t[1] for t in tokens[index + 1:])
            return _join(tokens[:index], False), domain or None
    return _join(tokens, False), None


def _render_addresses(addresses):
    """An env-from style list: adjacent address structures (no SP between them), or NIL."""
    if not addresses:
        return b"NIL"
    return b"(" + b"".join(plist([nstring(field) for field in a]) for a in addresses) + b")"


# --- ENVELOPE (RFC 3501 §7.4.2) --------------------------------------------

def envelope(header):
    """The ENVELOPE structure of a message header (the body, if given, is ignored)."""
    data = _crlf(header)
    return _envelope(data, 0, _header_bounds(data, 0, len(data))[0])


def _envelope(data, start, fields_end):
    fields = _first_fields(_ENVELOPE_FIELDS, data, start, fields_end)
    address_fields = [_address_list(fields[name]) if name in fields else []
                     for name in (b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc")]
    # Sender and Reply-To default to From when absent or empty.
    for index in (1, 2):
        address_fields[index] = address_fields[index] or address_fields[0]
    # Absent text fields are NIL, present but empty ones the empty string.
    return plist([nstring(fields.get(b"date")), nstring(fields.get(b"subject"))]
                 + [_render_addresses(a) for a in address_fields]
                 + [nstring(fields.get(b"in-reply-to")), nstring(fields.get(b"message-id"))])


# --- MIME fields (RFC 2045 §5, §6; RFC 2183; RFC 3282; RFC 2557) -----------

_TOKEN = rb"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_TYPE_SUBTYPE = re.compile(rb"[ \t]*(%s)[ \t]*/[ \t]*(%s)" % (_TOKEN, _TOKEN))
_LEADING_TOKEN = re.compile(rb"[ \t]*(%s)" % _TOKEN)
# Unquoted values are taken up to whitespace or ";" because mailers send
# unquoted tspecials (boundary=----=_Part_1).
_PARAMETER = re.compile(
    rb'[ \t]*;[ \t]*(%s)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"?|([^ \t;"]*))[ \t]*' % _TOKEN, re.S)
_UNTIL_SEMICOLON = re.compile(rb'(?:"(?:[^"\\]|\\.)*"?|[^;"])*', re.S)


def _parameters(value, pos):
    """[(upper-case attribute, value)] of the `; attribute=value` list from pos; junk is skipped."""
    params = []
    while pos < len(value):
        match = _PARAMETER.match(value, pos)
        if match:
            quoted = match.group(2)
            params.append((match.group(1).upper(),
                           match.group(3) if quoted is None else _unescape(quoted)))
            pos = match.end()
        else:
            pos = _UNTIL_SEMICOLON.match(value, pos + (value[pos:pos + 1] == b";")).end()
    return params


def _content_type(value):
    """(TYPE, SUBTYPE, params) of a Content-Type value, or None when absent or invalid."""
    if value is None:
        return None
    value = _strip_comments(value)
    match = _TYPE_SUBTYPE.match(value)
    if match is None:
        return None
    return match.group(1).upper(), match.group(2).upper(), _parameters(value, match.end())


def _encoding(fields):
    """The upper-case Content-Transfer-Encoding, "7BIT" when absent or invalid (RFC 2045 §6.1)."""
    value = fields.get(b"content-transfer-encoding")
    match = _LEADING_TOKEN.match(_strip_comments(value)) if value else None
    return match.group(1).upper() if match else b"7BIT"


def _render_params(params):
    if not params:
        return b"NIL"
    return plist([string(item) for pair in params for item in pair])


def _render_disposition(value):
    """body-fld-dsp: ("TYPE" params) or NIL."""
    value = _strip_comments(value) if value else b""
    match = _LEADING_TOKEN.match(value)
    if match is None:
        return b"NIL"
    return plist([string(match.group(1).upper()), _render_params(_parameters(value, match.end()))])


def _render_language(value):
    """body-fld-lang: the Content-Language tags as a list, or NIL."""
    tags = [t.strip(b" \t") for t in _strip_comments(value).split(b",")] if value else []
    tags = [t for t in tags if t]
    return plist([string(t) for t in tags]) if tags else b"NIL"


def _field_or_nil(fields, name):
    return nstring(fields.get(name) or None)


# --- The entity tree (RFC 2046 §5) ------------------------------------------

class _Entity:
    """One MIME entity: offsets into the CRLF message and its parsed Content-* fields.

    data[start:body] is its header including the blank line (the MIME header of
    a part); fields_end is where the header fields stop. `children` is None for
    a leaf, the parts of a multipart, or [encapsulated message] for message/rfc822.
    """

    __slots__ = ("start", "fields_end", "body", "end", "fields", "type", "subtype", "params",
                 "children")

    def __init__(self, start, fields_end, body, end, fields, content_type):
        self.start, self.fields_end, self.body, self.end = start, fields_end, body, end
        self.fields = fields
        self.type, self.subtype, self.params = content_type
        self.children = None

    def is_multipart(self):
        return self.children is not None and self.type == b"MULTIPART"

    def is_message(self):
        return self.children is not None and self.type == b"MESSAGE"


class _Parser:
    """Builds the entity tree of one message within MAX_NESTING and MAX_PARTS."""

    def __init__(self, data):
        self.data = data
        self.parts_left = MAX_PARTS

    def entity(self, start, end, default, depth, has_header=True):
        fields_end, body = _header_bounds(self.data, start, end) if has_header else (start, start)
        fields = _first_fields(_CONTENT_FIELDS, self.data, start, fields_end)
        content_type = _content_type(fields.get(b"content-type")) or default
        entity = _Entity(start, fields_end, body, end, fields, content_type)
        self.parts_left -= 1
        composite = content_type[0] == b"MULTIPART" or content_type[:2] == _MESSAGE_RFC822[:2]
        if composite and (depth >= MAX_NESTING or self.parts_left <= 0):
            entity.type, entity.subtype, entity.params = _OPAQUE
        elif content_type[0] == b"MULTIPART":
            entity.children = self.multipart_parts(entity, depth + 1)
        elif composite:
            entity.children = [self.entity(body, end, _TEXT_PLAIN, depth + 1)]
        return entity

    def multipart_parts(self, entity, depth):
        boundary = next((v for a, v in entity.params if a == b"BOUNDARY"), None)
        ranges = _part_ranges(self.data, entity.body, entity.end, boundary,
                              self.parts_left) if boundary else []
        if not ranges:
            return [self.entity(entity.body, entity.end, _TEXT_PLAIN, depth, has_header=False)]
        # RFC 2046 §5.1.5: in a digest, parts default to message/rfc822.
        default = _MESSAGE_RFC822 if entity.subtype == b"DIGEST" else _TEXT_PLAIN
        return [self.entity(start, end, default, depth) for start, end in ranges]


def _part_ranges(data, start, end, boundary, limit):
    """[(start, end)] of each body part's content between boundary lines (RFC 2046 §5.1.1).

    One left-to-right pass: the CRLF before a boundary line belongs to the
    boundary; a missing close delimiter ends the last part at `end`; after
    `limit` parts the last part runs to `end`.
    """
    marker, eol = b"--" + boundary, _eol(data)
    ranges, content, pos = [], None, start
    while True:
        found = data.find(marker, pos, end)
        if found < 0:
            break
        pos = found + len(marker)
        if found != start and data[found - len(eol):found] != eol:
            continue
        line_end, close = _boundary_line(data, pos, end)
        if line_end is None:
            continue
        if content is not None:
            ranges.append((content, max(content, found - len(eol))))
        if close:
            return ranges
        content = pos = line_end
        if len(ranges) + 1 >= limit:
            break
    if content is not None:
        ranges.append((content, end))
    return ranges


def _boundary_line(data, pos, end):
    """(end of the boundary line, is close delimiter), or (None, False) if text follows it."""
    newline = data.find(b"\n", pos, end)
    line_end = end if newline < 0 else newline + 1
    rest = data[pos:line_end]
    close = rest.startswith(b"--")
    if close:
        rest = rest[2:]
    if rest.strip(b" \t\r\n"):
        return None, False
    return line_end, close


def _parse(data):
    return _Parser(data).entity(0, len(data), _TEXT_PLAIN, 0)


# --- BODY / BODYSTRUCTURE (RFC 3501 §7.4.2) --------------------------------

def bodystructure(message, extensible):
    """BODYSTRUCTURE of a message (extensible=True, with extension data) or BODY (False)."""
    data = _prepared(message)
    return _structure(data, _parse(data), extensible)


def _structure(data, entity, extensible):
    if entity.is_multipart():
        items = [b"".join(_structure(data, part, extensible) for part in entity.children),
                 string(entity.subtype)]
        if extensible:
            items.append(_render_params(entity.params))
            items += _common_extension(entity.fields)
        return plist(items)
    fields = entity.fields
    items = [string(entity.type), string(entity.subtype), _render_params(_body_params(entity)),
             _field_or_nil(fields, b"content-id"), _field_or_nil(fields, b"content-description"),
             string(_encoding(fields)), number(_octets(data, entity.body, entity.end))]
    if entity.is_message():
        inner = entity.children[0]
        items += [_envelope(data, inner.start, inner.fields_end),
                  _structure(data, inner, extensible), _lines(data, entity)]
    elif entity.type == b"TEXT":
        items.append(_lines(data, entity))
    if extensible:
        items.append(_field_or_nil(fields, b"content-md5"))
        items += _common_extension(fields)
    return plist(items)


def part_structure(message, part):
    """BODYSTRUCTURE of the entity that part numbers name (() the message), or None."""
    data = _prepared(message)
    root = _parse(data)
    node = _resolve(root, tuple(part)) if part else root
    return None if node is None else _structure(data, node, True)


def _lines(data, entity):
    return number(data.count(b"\n", entity.body, entity.end))


def _body_params(entity):
    """The Content-Type parameters; text without a charset is US-ASCII (RFC 2045 §5.2)."""
    if entity.type == b"TEXT" and not any(a == b"CHARSET" for a, _ in entity.params):
        return [(b"CHARSET", b"US-ASCII"), *entity.params]
    return entity.params


def _common_extension(fields):
    """body disposition, body language, body location."""
    return [_render_disposition(fields.get(b"content-disposition")),
            _render_language(fields.get(b"content-language")),
            _field_or_nil(fields, b"content-location")]


# --- BODY[section] (RFC 3501 §6.4.5) ---------------------------------------

def section(message, section):
    """The bytes of BODY[section] (a command.Section), or None when the part does not exist."""
    data = _crlf(message)
    found = _section(data, section)
    return data[found[0]:found[1]] if isinstance(found, tuple) else found


def section_span(text, section):
    """BODY[section] of a PlainText: (start, end) of its text, bytes (CRLF) when the
    section is made up (HEADER.FIELDS), None when the part does not exist."""
    found = _section(text, section)
    return text.to_wire(found) if isinstance(found, bytes) else found


def _section(data, section):
    if not section.part:
        if section.text is None:
            return 0, len(data)
        return _message_section(data, 0, len(data), section)
    node = _resolve(_parse(data), section.part)
    if node is None:
        return None
    if section.text is None:
        return node.body, node.end
    if section.text == "MIME":
        return node.start, node.body
    if not node.is_message():
        return None
    inner = node.children[0]
    return _message_section(data, inner.start, inner.end, section)


def _resolve(root, part):
    """The entity that the part numbers name, or None."""
    node, candidates = None, _message_parts(root)
    for part_number in part:
        if not 1 <= part_number <= len(candidates):
            return None
        node = candidates[part_number - 1]
        candidates = _subparts(node)
    return node


def _message_parts(message):
    """Part numbers of a message: its parts if multipart, else part 1 is the message's own body."""
    return message.children if message.is_multipart() else [message]


def _subparts(entity):
    if entity.is_multipart():
        return entity.children
    if entity.is_message():
        return _message_parts(entity.children[0])
    return []


def _message_section(data, start, end, section):
    """HEADER, HEADER.FIELDS[.NOT] or TEXT of the message at data[start:end]; None for MIME."""
    fields_end, body = _header_bounds(data, start, end)
    if section.text == "HEADER":
        return start, body
    if section.text == "TEXT":
        return body, end
    if section.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return _header_fields(data[start:fields_end], section.fields,
                              section.text == "HEADER.FIELDS.NOT") + data[fields_end:body]
    return None


def _header_fields(header, names, exclude):
    """The fields whose name is (or, with exclude, is not) in names, in their original order."""
    wanted = {name.upper() for name in names}
    return b"".join(field for field in _RAW_FIELD.findall(header)
                    if field and (_field_name(field) in wanted) != exclude)


def _field_name(field):
    colon = field.find(b":")
    return (field[:colon] if colon >= 0 else field).rstrip(b" \t\r\n").upper()


# --- BINARY (RFC 3516) -------------------------------------------------------

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(b for b in range(256) if b not in _BASE64_ALPHABET)


def binary(message, part):
    """Decoded content of the part that part numbers name (RFC 3516), or None if there is none.

    An empty part tuple is the whole message, which has no transfer encoding of
    its own. Raises NotLeaf for a multipart, UnknownEncoding for a CTE other
    than 7bit, 8bit, binary, base64 and quoted-printable.
    """
    data = _prepared(message)
    found = binary_span(data, part)
    if found is None:
        return None
    start, end, encoding = found
    return _decode(_wire_bytes(data, start, end), encoding)


def binary_span(data, part):
    """(start, end, upper-case CTE) of what binary() decodes in parsed text, or None;
    NotLeaf and UnknownEncoding as binary() raises them."""
    if not part:
        return 0, len(data), b"BINARY"
    node = _resolve(_parse(data), tuple(part))
    if node is None:
        return None
    if node.is_multipart():
        raise NotLeaf("a multipart has no content of its own")
    encoding = _encoding(node.fields)
    if encoding not in _DECODERS:
        raise UnknownEncoding(encoding)
    return node.body, node.end, encoding


def _wire_bytes(data, start, end):
    """data[start:end] in the wire form (CRLF), as bytes."""
    return b"".join(data.wire_chunks(start, end)) if hasattr(data, "eol") else data[start:end]


def leaves(message):
    """(header start, body start, end, upper-case CTE) of each leaf entity, in order.

    Unlike the other functions this reads message as given, without turning
    bare LFs into CRLF first: APPEND (imap.storable) needs the offsets of the
    client's own bytes. Structure lines are found only where they end in CRLF.
    """
    stack = [_parse(bytes(message))]
    while stack:
        node = stack.pop()
        if node.children is None:
            yield node.start, node.body, node.end, _encoding(node.fields)
        else:
            stack.extend(reversed(node.children))


def text_leaves(message):
    """(body start, end, upper-case CTE, charset or None) of each text/* leaf, in order,
    with offsets in the parsed text (a PlainText, or the message in CRLF form)."""
    stack = [_parse(_prepared(message))]
    while stack:
        node = stack.pop()
        if node.children is not None:
            stack.extend(reversed(node.children))
        elif node.type == b"TEXT":
            charset = next((value for name, value in node.params if name == b"CHARSET"), None)
            yield node.body, node.end, _encoding(node.fields), charset


def decode(body, encoding):
    """body with its Content-Transfer-Encoding removed; UnknownEncoding if it has no decoder."""
    return _decode(body, encoding)


def _decode(body, encoding):
    if encoding not in _DECODERS:
        raise UnknownEncoding(encoding)
    return _DECODERS[encoding](body)


def _decode_base64(body):
    # RFC 2045 §6.8: characters outside the alphabet are ignored, and "=" means
    # the data has ended; a final lone sextet cannot make an octet.
    text = body.split(b"=", 1)[0].translate(None, _NOT_BASE64)
    if len(text) % 4 == 1:
        text = text[:-1]
    return binascii.a2b_base64(text + b"=" * (-len(text) % 4))


def _decode_quoted_printable(body):
    # RFC 2045 §6.7 rule 3: trailing whitespace was added in transport; dropping
    # it also turns "= CRLF" into a soft line break.
    return binascii.a2b_qp(b"\r\n".join(line.rstrip(b" \t") for line in body.split(b"\r\n")))


# Transfer encodings whose content is the octets as they are (RFC 2045 §6.2).
IDENTITY_ENCODINGS = frozenset((b"7BIT", b"8BIT", b"BINARY"))
_DECODERS = dict.fromkeys(IDENTITY_ENCODINGS, lambda body: body)
_DECODERS.update({b"BASE64": _decode_base64, b"QUOTED-PRINTABLE": _decode_quoted_printable})


def decoded_pieces(pieces, encoding):
    """What _decode gives for the joined pieces (wire form), a piece at a time."""
    if encoding == b"BASE64":
        return _base64_pieces(pieces)
    if encoding == b"QUOTED-PRINTABLE":
        return _quoted_printable_pieces(pieces)
    return pieces  # identity, or unknown: the raw bytes, as `email` leaves them


def _base64_pieces(pieces):
    """_decode_base64 piece by piece: whole quanta of four as they come."""
    pending = b""
    for piece in pieces:
        end = piece.find(b"=")
        pending += (piece if end < 0 else piece[:end]).translate(None, _NOT_BASE64)
        whole = len(pending) - len(pending) % 4
        if whole:
            yield binascii.a2b_base64(pending[:whole])
            pending = pending[whole:]
        if end >= 0:
            break
    if len(pending) > 1:
        yield binascii.a2b_base64(pending + b"=" * (-len(pending) % 4))


def _quoted_printable_pieces(pieces):
    """_decode_quoted_printable piece by piece: whole lines at a time."""
    pending = b""
    for piece in pieces:
        pending += piece
        cut = pending.rfind(b"\r\n") + 2
        if cut > 1:
            yield _decode_quoted_printable(pending[:cut])
            pending = pending[cut:]
    if pending:
        yield _decode_quoted_printable(pending)
