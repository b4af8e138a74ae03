"""A deterministic generator of realistic spool mailboxes for the benchmarks.

`write_mbox(path, count)` writes `count` messages as an MTA appends them to
/var/spool/mail/USER (From_ line, header, body, empty separator line; body
lines that start with `From ` quoted as `>From `; no c-client metadata
headers). The same count and seed give the same bytes on every machine and
Python 3 version (only `random.Random` with an integer seed is used).

The mix follows what a personal mailbox holds: mostly short plain text
(often replies that quote the previous message), HTML newsletters sent as
multipart/alternative, attachments of a few KB to a few hundred KB with a rare
megabyte-sized one, UTF-8 text in quoted-printable or 8bit with RFC 2047
encoded headers, forwarded messages (message/rfc822) and delivery reports.
Headers carry several Received lines, DKIM signatures, list headers and
threading headers. The mean message is about 12 KB, the median about 4 KB.

`RARE_WORD` appears in the plain-text body of message numbers n with
n % RARE_EVERY == RARE_OFFSET and nowhere else, so `SEARCH BODY RARE_WORD`
has a known answer.

Run `python3 bench/corpus.py COUNT FILE` to write one mailbox by hand.
"""

import base64
import binascii
import random
import sys

FORMAT_VERSION = 1
DEFAULT_SEED = 8
RARE_WORD = "quokkafeather"
RARE_EVERY = 1009
RARE_OFFSET = 17
# 2024-01-01 00:00:00 UTC; one message every ~47 minutes on average after it.
BASE_TIME = 1704067200
MEAN_GAP_SECONDS = 2800

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_WORDS = """the of and to a in is it you that he was for on are with as I his they be at one
have this from or had by hot word but what some we can out other were all there when up use
your how said an each she which do their time if will way about many then them write would
like so these her long make thing see him two has look more day could go come did number sound
no most people my over know water than call first who may down side been now find any new work
part take get place made live where after back little only round man year came show every good
me give our under name very through just form sentence great think say help low line differ turn
cause much mean before move right boy old too same tell does set three want air well also play
small end put home read hand port large spell add even land here must big high such follow act
why ask men change went light kind off need house picture try us again animal point mother world
near build self earth father head stand own page should country found answer school grow study
still learn plant cover food sun four between state keep eye never last let thought city tree
cross farm hard start might story saw far sea draw left late run while press close night real
life few north open seem together next white children begin got walk example ease paper group
always music those both mark often letter until mile river car feet care second book carry took
science eat room friend began idea fish mountain stop once base hear horse cut sure watch color
face wood main enough plain girl usual young ready above ever red list though feel talk bird soon
body dog family direct pose leave song measure door product black short numeral class wind
question happen complete ship area half rock order fire south problem piece told knew pass since
top whole king space heard best hour better true during hundred five remember step early hold west
ground interest reach fast verb sing listen six table travel less morning ten simple several vowel
toward war lay against pattern slow center love person money serve appear road map rain rule
govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note
wait plan figure star box noun field rest correct able pound done beauty drive stood contain front
teach week final gave green oh quick develop ocean warm free minute strong special mind behind
clear tail produce fact street inch multiply nothing course stay wheel full force blue object
decide surface deep moon island foot system busy test record boat common gold possible plane
stead dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring
yes distant fill east paint language among budget invoice meeting schedule deadline server backup
release patch kernel review deploy quarter report agenda minutes draft contract customer ticket
migration database cluster latency outage rollback firewall certificate mailbox spool""".split()
_FIRST = ("Ada Grace Ken Barbara Dennis Radia Linus Margaret Alan Edsger Frances John Sophie Tim "
          "Niklaus Donald Leslie Hedy Claude Jean Annie Rosalind Vint Bjarne Guido Larry Yukihiro "
          "Anita Katherine Dorothy Mary Karen Lynn Shafi Joan Evelyn Klára Zoë Jürgen Søren "
          "Élodie Łukasz Ångström").split()
_LAST = ("Lovelace Hopper Thompson Liskov Ritchie Perlman Torvalds Hamilton Turing Dijkstra Allen "
         "McCarthy Wilson Berners-Lee Wirth Knuth Lamport Lamarr Shannon Sammet Easley Picard Cerf "
         "Stroustrup Rossum Wall Matsumoto Borg Johnson Vaughan Keller Spärck-Jones Conway "
         "Goldwasser Clarke Boole Dán Müller Kierkegaard Ørsted Wałęsa").split()
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.edu", "corp.example.com",
            "lists.example.org", "news.example.net", "example.co.uk", "example.de", "example.fr")
_TIMEZONES = ("+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900", "-0300")
_MAILERS = ("Mozilla Thunderbird 115.5.0", "Apple Mail (2.3731.700.6)", "Mutt/2.2.9 (2022-11-12)",
            "Microsoft Outlook 16.0", "Roundcube Webmail/1.6.5", "Evolution 3.46.4", "K-9 Mail 6.712")
_ATTACHMENTS = (("application/pdf", "pdf"), ("image/jpeg", "jpg"), ("image/png", "png"),
                ("application/zip", "zip"), ("application/octet-stream", "bin"),
                ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"))
_LISTS = ("dev.lists.example.org", "announce.example.net", "users.lists.example.org",
          "newsletter.example.com")


# -- small pieces ---------------------------------------------------------


def ctime(when):
    """The asctime form of a UTC time, as a From_ line carries it."""
    import time

    t = time.gmtime(when)
    return "%s %s %2d %02d:%02d:%02d %d" % (_DAYS[t.tm_wday], _MONTHS[t.tm_mon - 1], t.tm_mday,
                                             t.tm_hour, t.tm_min, t.tm_sec, t.tm_year)


def rfc822_date(when, zone):
    """The RFC 5322 Date: form of a UTC time shown in the zone `+HHMM`."""
    import time

    sign = 1 if zone[0] == "+" else -1
    offset = sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
    t = time.gmtime(when + offset)
    return "%s, %d %s %d %02d:%02d:%02d %s" % (_DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1],
                                              t.tm_year, t.tm_hour, t.tm_min, t.tm_sec, zone)


def _person(rng):
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    local = ("%s.%s" % (first, last)).lower().encode("ascii", "ignore").decode().replace("-", "")
    return "%s %s" % (first, last), "%s@%s" % (local or "user", rng.choice(_DOMAINS))


def _encoded_word(text):
    """RFC 2047 B-encoding of non-ASCII text (ASCII text unchanged)."""
    if text.isascii():
        return text
    return "=?UTF-8?B?%s?=" % base64.b64encode(text.encode("utf-8")).decode("ascii")


def _address(name, email):
    if name.isascii():
        return '"%s" <%s>' % (name, email) if "." in name else "%s <%s>" % (name, email)
    return "%s <%s>" % (_encoded_word(name), email)


def _lines(rng, count, width=(7, 13)):
    """`count` lines of text, a sentence-like line each."""
    choices, randint = rng.choices, rng.randint
    out = []
    for _ in range(count):
        words = choices(_WORDS, k=randint(*width))
        out.append(" ".join(words).capitalize() + rng.choice((".", ".", ",", "?", ":", "")))
    return out


def _paragraphs(rng, lines):
    """Text of about `lines` lines in paragraphs of 2-6 lines."""
    out = []
    while lines > 0:
        size = min(lines, rng.randint(2, 6))
        out.extend(_lines(rng, size))
        out.append("")
        lines -= size
    return out


def _traps(rng, number):
    """Lines that mbox and POP3 code must treat right: `From `, `.` and `..` starts."""
    pick = rng.random()
    if pick < 0.05:
        return ["From the notes of meeting %d, as agreed:" % number]
    if pick < 0.08:
        return [".", "..two dots at the start", ".single dot at the start"]
    if pick < 0.10:
        return [">From an already quoted line"]
    return []


def _plain_text(rng, number, lines, quote=False):
    """A personal plain-text body; replies quote part of an earlier text."""
    name = rng.choice(_FIRST)
    out = ["Hi %s," % name, ""]
    out += _paragraphs(rng, lines)
    out += _traps(rng, number)
    if number % RARE_EVERY == RARE_OFFSET:
        out += ["By the way, the %s report is attached to the ticket." % RARE_WORD, ""]
    if quote:
        out += ["", "On %s, %s wrote:" % (rfc822_date(BASE_TIME + number * 600, "+0000"),
                                         _person(rng)[0])]
        out += ["> " + line if line else ">" for line in _paragraphs(rng, rng.randint(4, 30))]
    out += ["", "-- ", "%s %s" % (rng.choice(_FIRST), rng.choice(_LAST))]
    return "\n".join(out) + "\n"


def _utf8_text(rng, lines):
    out = ["Grüße aus Zürich! Café, naïve, façade, smörgåsbord, Ελληνικά, 日本語のテキスト.", ""]
    for line in _lines(rng, lines):
        out.append(line.replace("e", "é", 1).replace("a", "ä", 1))
    return "\n".join(out) + "\n"


def _quoted_printable(text):
    return binascii.b2a_qp(text.encode("utf-8")).decode("ascii")


def _html(rng, lines):
    body = _lines(rng, lines)
    parts = ['<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{font-family:'
             'Helvetica,Arial,sans-serif;color:#222}td{padding:4px 8px}.footer{font-size:11px;'
             'color:#888}</style></head><body><table width="100%" cellpadding="0" cellspacing="0">']
    for index in range(0, len(body), 3):
        parts.append('<tr><td><p style="margin:0 0 12px 0">%s</p></td></tr>'
                     % " ".join(body[index:index + 3]))
    parts.append('<tr><td class="footer">You receive this because you subscribed. '
                 '<a href="https://news.example.net/unsubscribe?id=%d">Unsubscribe</a></td></tr>'
                 '</table></body></html>' % rng.getrandbits(32))
    html = "\n".join(parts)
    # HTML parts go out quoted-printable with lines below 76 characters, as MUAs send them.
    return _quoted_printable(html)


def _attachment_size(rng, large):
    if large:
        return rng.randint(150_000, 700_000)
    # Log-uniform between 1.5 KB and 60 KB: many small files, a few large ones.
    return int(1500 * (40 ** rng.random()))


def _attachment(rng, boundary, number, large=False):
    kind, extension = rng.choice(_ATTACHMENTS)
    data = _random_bytes(rng, large)
    name = "%s-%d.%s" % (rng.choice(("scan", "report", "photo", "invoice", "notes", "slides")),
                         number, extension)
    return ("--%s\nContent-Type: %s; name=\"%s\"\nContent-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=\"%s\"\n\n%s"
            % (boundary, kind, name, name, base64.encodebytes(data).decode("ascii")))


def _random_bytes(rng, large):
    size = _attachment_size(rng, large)
    return rng.getrandbits(8 * size).to_bytes(size, "little")


def _boundary(rng):
    return "----=_Part_%d_%d.%d" % (rng.getrandbits(20), rng.getrandbits(30), rng.getrandbits(40))


# -- message kinds ----------------------------------------------------------
# Each returns (extra header lines, body) for a message.


def _kind_plain(rng, number):
    quote = rng.random() < 0.4
    return (["Content-Type: text/plain; charset=us-ascii; format=flowed",
             "Content-Transfer-Encoding: 7bit"],
            _plain_text(rng, number, rng.randint(3, 40), quote))


def _kind_alternative(rng, number):
    boundary = _boundary(rng)
    lines = rng.randint(10, 80)
    text = "\n".join(_lines(rng, lines)) + "\n"
    body = ("This is a multi-part message in MIME format.\n\n--%s\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
            "%s\n--%s\nContent-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n%s\n--%s--\n"
            % (boundary, _quoted_printable(text), boundary, _html(rng, lines), boundary))
    return ['Content-Type: multipart/alternative; boundary="%s"' % boundary], body


def _kind_mixed(rng, number, large=False):
    boundary = _boundary(rng)
    parts = ["This is a multi-part message in MIME format.\n\n--%s\n"
             "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n%s"
             % (boundary, _plain_text(rng, number, rng.randint(2, 12)))]
    for _ in range(1 if large else rng.choice((1, 1, 1, 1, 2))):
        parts.append(_attachment(rng, boundary, number, large))
    body = "\n".join(parts) + "\n--%s--\n" % boundary
    return ['Content-Type: multipart/mixed; boundary="%s"' % boundary], body


def _kind_nested(rng, number):
    outer, inner = _boundary(rng), _boundary(rng)
    lines = rng.randint(5, 40)
    text = "\n".join(_lines(rng, lines)) + "\n"
    body = ("--%s\nContent-Type: multipart/alternative; boundary=\"%s\"\n\n--%s\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
            "%s\n--%s\nContent-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n%s\n--%s--\n\n%s\n--%s--\n"
            % (outer, inner, inner, _quoted_printable(text), inner, _html(rng, lines), inner,
               _attachment(rng, outer, number), outer))
    return ['Content-Type: multipart/mixed; boundary="%s"' % outer], body


def _kind_utf8(rng, number):
    text = _utf8_text(rng, rng.randint(3, 30))
    if rng.random() < 0.5:
        return (["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"], text)
    return (["Content-Type: text/plain; charset=utf-8",
             "Content-Transfer-Encoding: quoted-printable"], _quoted_printable(text))


def _kind_forward(rng, number):
    boundary = _boundary(rng)
    name, email = _person(rng)
    inner = ("From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <fwd.%d.%x@%s>\n"
             "Content-Type: text/plain; charset=us-ascii\n\n%s"
             % (_address(name, email), _address(*_person(rng)), " ".join(_lines(rng, 1, (3, 7))),
                rfc822_date(BASE_TIME + number * 1000, rng.choice(_TIMEZONES)), number,
                rng.getrandbits(32), email.split("@")[1], _plain_text(rng, number, rng.randint(3, 20))))
    body = ("--%s\nContent-Type: text/plain; charset=us-ascii\n\nForwarding this, see below.\n\n"
            "--%s\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n%s\n--%s--\n"
            % (boundary, boundary, inner, boundary))
    return ['Content-Type: multipart/mixed; boundary="%s"' % boundary], body


def _kind_report(rng, number):
    boundary = _boundary(rng)
    recipient = _person(rng)[1]
    body = ("--%s\nContent-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n"
            "This is the mail system at host mx.example.net.\n\nI'm sorry to have to inform you that "
            "your message could not\nbe delivered to one or more recipients.\n\n<%s>: host "
            "mx.example.org said: 550 5.1.1 User unknown\n\n--%s\n"
            "Content-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; mx.example.net\nArrival-Date: %s\n\nFinal-Recipient: rfc822; %s\n"
            "Action: failed\nStatus: 5.1.1\n\n--%s\nContent-Description: Undelivered Message Headers\n"
            "Content-Type: text/rfc822-headers\n\nFrom: Test User <pyimapd-test@localhost>\n"
            "To: %s\nSubject: Hello\n\n--%s--\n"
            % (boundary, recipient, boundary, rfc822_date(BASE_TIME + number * 900, "+0000"),
               recipient, boundary, recipient, boundary))
    return (['Content-Type: multipart/report; report-type=delivery-status; boundary="%s"'
             % boundary], body)


# (cumulative weight, kind): about 42% plain, 22% HTML, 16% attachments, 6% nested,
# 8% UTF-8, 3% forwards, 2.5% bounces, 0.5% large attachments (150-700 KB).
_KINDS = ((0.42, _kind_plain), (0.64, _kind_alternative), (0.80, _kind_mixed),
          (0.86, _kind_nested), (0.94, _kind_utf8), (0.97, _kind_forward), (0.995, _kind_report),
          (1.01, lambda rng, number: _kind_mixed(rng, number, large=True)))


def _kind_for(rng, number):
    if number % RARE_EVERY == RARE_OFFSET:
        rng.random()
        return lambda rng, number: (["Content-Type: text/plain; charset=us-ascii",
                                     "Content-Transfer-Encoding: 7bit"],
                                    _plain_text(rng, number, rng.randint(3, 20)))
    pick = rng.random()
    for weight, kind in _KINDS:
        if pick < weight:
            return kind
    return _KINDS[-1][1]


# -- headers and framing ------------------------------------------------------


def _received(rng, when, hops):
    lines = []
    for hop in range(hops):
        stamp = rfc822_date(when - hop * rng.randint(1, 30), "+0000")
        lines.append("Received: from relay%d.example.net (relay%d.example.net [198.51.100.%d])\n"
                     "\tby mx%d.example.com (Postfix) with ESMTPS id 4T%010X\n"
                     "\tfor <pyimapd-test@localhost>; %s"
                     % (hop, hop, rng.randint(1, 254), hop, rng.getrandbits(40), stamp))
    return lines


def _dkim(rng, domain):
    signature = base64.b64encode(rng.getrandbits(8 * 256).to_bytes(256, "little")).decode()
    folded = "\n\t ".join(signature[i:i + 70] for i in range(0, len(signature), 70))
    return ("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s;\n\ts=selector1; "
            "t=%d; h=from:to:subject:date:message-id;\n\tbh=%s;\n\tb=%s"
            % (domain, rng.getrandbits(31), base64.b64encode(rng.getrandbits(256).to_bytes(32, "little"))
               .decode(), folded))


def _subject(rng, number):
    words = " ".join(rng.choices(_WORDS, k=rng.randint(2, 9)))
    prefix = rng.choice(("", "", "", "Re: ", "Re: ", "Fwd: ", "[dev] ", "Re: [users] "))
    if rng.random() < 0.08:
        return _encoded_word("%sÜber %s — %d" % (prefix, words, number))
    if rng.random() < 0.2:
        return "%s%s %d\n\tand a folded continuation" % (prefix, words.capitalize(), number)
    return "%s%s %d" % (prefix, words.capitalize(), number)


def make_message(rng, number, when):
    """(envelope sender, the message as the spool holds it: header, empty line, body).

    Line ends are LF and body lines starting `From ` are quoted, as an MTA writes them.
    """
    name, email = _person(rng)
    domain = email.split("@")[1]
    zone = rng.choice(_TIMEZONES)
    extra, body = _kind_for(rng, number)(rng, number)
    header = ["Return-Path: <%s>" % email]
    header += _received(rng, when, rng.randint(2, 5))
    if rng.random() < 0.45:
        header.append(_dkim(rng, domain))
        header.append("Authentication-Results: mx0.example.com; dkim=pass header.d=%s; "
                      "spf=pass smtp.mailfrom=%s" % (domain, domain))
    header.append("From: %s" % _address(name, email))
    recipients = [_address("Test User", "pyimapd-test@localhost")]
    recipients += [_address(*_person(rng)) for _ in range(rng.choice((0, 0, 0, 1, 2, 4)))]
    header.append("To: %s" % ",\n\t".join(recipients))
    if rng.random() < 0.2:
        header.append("Cc: %s" % _address(*_person(rng)))
    header.append("Subject: %s" % _subject(rng, number))
    header.append("Date: %s" % rfc822_date(when - rng.randint(5, 600), zone))
    header.append("Message-ID: <%d.%016x@%s>" % (number, rng.getrandbits(64), domain))
    if number > 1 and rng.random() < 0.35:
        parent = "<%d.%016x@%s>" % (rng.randint(max(1, number - 500), number - 1),
                                     rng.getrandbits(64), rng.choice(_DOMAINS))
        header.append("In-Reply-To: %s" % parent)
        header.append("References: %s" % parent)
    if rng.random() < 0.25:
        name_of_list = rng.choice(_LISTS)
        header.append("List-Id: <%s>" % name_of_list)
        header.append("List-Unsubscribe: <mailto:leave@%s>, <https://%s/leave>"
                      % (name_of_list, name_of_list))
        header.append("Precedence: list")
    header.append("%s: %s" % (rng.choice(("X-Mailer", "User-Agent")), rng.choice(_MAILERS)))
    header.append("MIME-Version: 1.0")
    header += extra
    body = body.replace("\nFrom ", "\n>From ")
    if body.startswith("From "):
        body = ">" + body
    return email, ("\n".join(header) + "\n\n" + body).encode("utf-8")


def messages(count, seed=DEFAULT_SEED):
    """Yield (number, sender, delivery time, message bytes) for messages 1..count."""
    rng = random.Random(seed)
    when = BASE_TIME
    for number in range(1, count + 1):
        when += rng.randint(1, 2 * MEAN_GAP_SECONDS)
        sender, message = make_message(rng, number, when)
        yield number, sender, when, message


def write_mbox(path, count, seed=DEFAULT_SEED):
    """Write the spool file; return (messages written, number of those holding RARE_WORD)."""
    rare = 0
    with open(path, "wb") as spool:
        for number, sender, when, message in messages(count, seed):
            spool.write(b"From %s %s\n" % (sender.encode("ascii"), ctime(when).encode("ascii")))
            spool.write(message)
            # The empty line that separates messages (the message itself ends with LF).
            spool.write(b"\n")
            rare += number % RARE_EVERY == RARE_OFFSET
    return count, rare


def rare_count(count):
    """How many of messages 1..count contain RARE_WORD."""
    return sum(1 for n in range(1, count + 1) if n % RARE_EVERY == RARE_OFFSET)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python3 bench/corpus.py COUNT FILE")
    print("%d messages, %d with %r" % (write_mbox(sys.argv[2], int(sys.argv[1])) + (RARE_WORD,)))
