// Reads an .ics from stdin and prints how two JavaScript parsers see it:
//   {"icaljs": [...], "nodeical": [...]}
// Each entry is [uid, start, end, summary, status], with start/end as
// "YYYY-MM-DDTHH:MM:SSZ" (UTC) for timed events and "YYYY-MM-DD" for dates,
// sorted by (start, uid) so it compares with the Python side.
//
// ical.js is the parser of Thunderbird and Nextcloud. It only knows a TZID
// once its VTIMEZONE is registered; an unknown TZID silently becomes floating
// time, so registering the feed's own VTIMEZONEs (and nothing else) before
// reading any time is what makes a missing or wrong VTIMEZONE show up here.
import ICAL from 'ical.js';
import nodeIcal from 'node-ical';

const pad = (n, width = 2) => String(n).padStart(width, '0');

function utcIso(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function byStartThenUid(a, b) {
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return 0;
}

function icaljsTime(time) {
  if (time.isDate) {
    return `${pad(time.year, 4)}-${pad(time.month)}-${pad(time.day)}`;
  }
  if (time.zone === ICAL.Timezone.localTimezone) {
    // Floating: the viewer's wall clock. Report it without a "Z" so a test
    // comparing against UTC fails loudly instead of by a few hours.
    return `${pad(time.year, 4)}-${pad(time.month)}-${pad(time.day)}T${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}(floating)`;
  }
  return utcIso(new Date(time.toUnixTime() * 1000));
}

function parseIcaljs(text) {
  const root = new ICAL.Component(ICAL.parse(text));
  ICAL.TimezoneService.reset();
  for (const vtimezone of root.getAllSubcomponents('vtimezone')) {
    ICAL.TimezoneService.register(vtimezone);
  }
  const rows = [];
  for (const vevent of root.getAllSubcomponents('vevent')) {
    const event = new ICAL.Event(vevent);
    rows.push([
      event.uid,
      icaljsTime(event.startDate),
      icaljsTime(event.endDate),
      event.summary,
      vevent.getFirstPropertyValue('status'),
    ]);
  }
  return rows.sort(byStartThenUid);
}

function nodeicalTime(value) {
  if (value.dateOnly) {
    // node-ical builds whole-day dates at local midnight of this process.
    return `${pad(value.getFullYear(), 4)}-${pad(value.getMonth() + 1)}-${pad(value.getDate())}`;
  }
  return utcIso(value);
}

function nodeicalText(value) {
  // Values with parameters come back as {params, val}.
  return value !== null && typeof value === 'object' && 'val' in value ? value.val : value;
}

function parseNodeical(text) {
  const parsed = nodeIcal.sync.parseICS(text);
  const rows = [];
  for (const item of Object.values(parsed)) {
    if (!item || item.type !== 'VEVENT') continue;
    rows.push([
      item.uid,
      nodeicalTime(item.start),
      nodeicalTime(item.end),
      nodeicalText(item.summary),
      item.status ?? null,
    ]);
  }
  return rows.sort(byStartThenUid);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const text = await readStdin();
process.stdout.write(JSON.stringify({icaljs: parseIcaljs(text), nodeical: parseNodeical(text)}));
