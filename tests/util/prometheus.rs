//! A strict reader of the Prometheus text exposition format, version 0.0.4, written from
//! the format's description (prometheus.io, "Exposition formats"): it refuses what a
//! lenient scraper would skip, so a test that parses `/metrics` with it proves the
//! endpoint well formed.
//!
//! Checked: the text ends with a line feed; `# HELP` and `# TYPE` at most once per
//! family, `# TYPE` before the family's first sample; metric and label names by their
//! grammar, no `__` label names; label values with only `\\`, `\"` and `\n` escapes;
//! values as Go floats (`NaN`, `+Inf`, `-Inf` allowed), optional integer timestamps; each
//! family's lines together; no series twice. For every histogram: `le` ascending, bucket
//! counts non-decreasing, a `+Inf` bucket equal to `_count`, and `_sum`, `_count` present.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp: Option<i64>,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name{a="1",b="2"}`, labels sorted: the series' identity.
    pub fn series(&self) -> String {
        let mut labels = self.labels.clone();
        labels.sort();
        let inner: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
        format!("{}{{{}}}", self.name, inner.join(","))
    }
}

#[derive(Clone, Debug)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub families: Vec<Family>,
}

impl Exposition {
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Every sample by its series.
    pub fn by_series(&self) -> BTreeMap<String, (Kind, f64)> {
        let mut out = BTreeMap::new();
        for f in &self.families {
            for s in &f.samples {
                out.insert(s.series(), (f.kind, s.value));
            }
        }
        out
    }
}

/// Parse `text`, or say which line breaks which rule.
pub fn parse(text: &str) -> Result<Exposition, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the last line must end with a line feed".into());
    }
    let mut p = Parser::default();
    for (i, line) in text.split('\n').enumerate() {
        p.line(line)
            .map_err(|e| format!("line {}: {e}: {line:?}", i + 1))?;
    }
    for f in &p.out.families {
        if f.kind == Kind::Histogram {
            check_histogram(f)?;
        }
    }
    Ok(p.out)
}

#[derive(Default)]
struct Parser {
    out: Exposition,
    /// Families declared by TYPE (and HELP) whose samples may still come.
    types: BTreeMap<String, Kind>,
    helps: BTreeMap<String, String>,
    /// Families whose lines are over: seeing them again breaks the grouping rule.
    closed: HashSet<String>,
    series: HashSet<String>,
}

impl Parser {
    fn line(&mut self, line: &str) -> Result<(), String> {
        let line = line.trim_matches(|c| c == ' ' || c == '\t');
        if line.is_empty() {
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix('#') {
            return self.comment(rest.trim_start_matches([' ', '\t']));
        }
        let sample = sample(line)?;
        self.add(sample)
    }

    fn comment(&mut self, rest: &str) -> Result<(), String> {
        let (word, tail) = split_token(rest);
        match word {
            "HELP" => {
                let (name, doc) = split_token(tail);
                metric_name(name)?;
                self.enter(name)?;
                unescape(doc, false)?;
                if self.helps.insert(name.into(), doc.into()).is_some() {
                    return Err(format!("a second HELP for {name}"));
                }
                if let Some(f) = self.out.families.last_mut() {
                    f.help = Some(doc.into());
                }
                Ok(())
            }
            "TYPE" => {
                let tokens: Vec<&str> = tail.split_whitespace().collect();
                let [name, kind] = tokens[..] else {
                    return Err("TYPE takes a name and a type".into());
                };
                metric_name(name)?;
                let kind = match kind {
                    "counter" => Kind::Counter,
                    "gauge" => Kind::Gauge,
                    "histogram" => Kind::Histogram,
                    "summary" => Kind::Summary,
                    "untyped" => Kind::Untyped,
                    other => return Err(format!("no such type {other}")),
                };
                self.enter(name)?;
                if self
                    .current()
                    .is_some_and(|f| f.name == name && !f.samples.is_empty())
                {
                    return Err(format!("TYPE of {name} after its samples"));
                }
                if self.types.insert(name.into(), kind).is_some() {
                    return Err(format!("a second TYPE for {name}"));
                }
                if let Some(f) = self.out.families.last_mut() {
                    f.kind = kind;
                }
                Ok(())
            }
            _ => Ok(()), // any other comment
        }
    }

    fn current(&self) -> Option<&Family> {
        self.out.families.last()
    }

    /// Make `name` the current family (a new one, unless it is the current already).
    fn enter(&mut self, name: &str) -> Result<(), String> {
        if self.current().is_some_and(|f| f.name == name) {
            return Ok(());
        }
        if self.closed.contains(name) {
            return Err(format!("the lines of {name} are not together"));
        }
        if let Some(prev) = self.out.families.last() {
            self.closed.insert(prev.name.clone());
        }
        self.out.families.push(Family {
            name: name.into(),
            kind: Kind::Untyped,
            help: None,
            samples: Vec::new(),
        });
        Ok(())
    }

    /// The family a sample named `name` belongs to, by the declared types.
    fn family_of(&self, name: &str) -> String {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                match self.types.get(base) {
                    Some(Kind::Histogram) => return base.into(),
                    Some(Kind::Summary) if suffix != "_bucket" => return base.into(),
                    _ => {}
                }
            }
        }
        name.into()
    }

    fn add(&mut self, s: Sample) -> Result<(), String> {
        let family = self.family_of(&s.name);
        self.enter(&family)?;
        if !self.series.insert(s.series()) {
            return Err(format!("series {} twice", s.series()));
        }
        let kind = self.types.get(&family).copied().unwrap_or(Kind::Untyped);
        if kind == Kind::Counter && s.value.partial_cmp(&0.0).is_none_or(|o| o.is_lt()) {
            return Err("a counter below zero (or NaN)".into());
        }
        let help = self.helps.get(&family).cloned();
        let f = self.out.families.last_mut().ok_or("no family")?;
        f.kind = kind;
        f.help = help;
        f.samples.push(s);
        Ok(())
    }
}

/// The first whitespace-separated token and the rest after its separator.
fn split_token(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

fn metric_name(n: &str) -> Result<(), String> {
    let ok = n.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if n.is_empty() || !ok {
        return Err(format!("not a metric name: {n:?}"));
    }
    Ok(())
}

fn label_name(n: &str) -> Result<(), String> {
    let ok = n
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    if n.is_empty() || !ok || n.starts_with("__") {
        return Err(format!("not a label name: {n:?}"));
    }
    Ok(())
}

/// Undo `\\`, `\n` (and `\"` in a label value); any other escape is an error.
fn unescape(s: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') if quotes => out.push('"'),
                other => return Err(format!("bad escape \\{other:?}")),
            },
            '"' if quotes => return Err("an unescaped quote".into()),
            '\n' => return Err("a raw line feed".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A Go float as the format allows it.
fn value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => return Ok(f64::NAN),
        "+Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || !exp_ok {
        return Err(format!("not a value: {s:?}"));
    }
    s.parse().map_err(|_| format!("not a value: {s:?}"))
}

/// `name{labels} value [timestamp]`.
fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' ', '\t'])
        .ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(inner)?;
        labels = parsed;
        rest = after;
    }
    if !rest.starts_with([' ', '\t']) {
        return Err("no blank before the value".into());
    }
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let (v, ts) = match tokens[..] {
        [v] => (v, None),
        [v, ts] => (
            v,
            Some(
                ts.parse::<i64>()
                    .map_err(|_| format!("bad timestamp {ts}"))?,
            ),
        ),
        _ => return Err("a value and at most a timestamp".into()),
    };
    Ok(Sample {
        name: name.into(),
        labels,
        value: value(v)?,
        timestamp: ts,
    })
}

type Labels = Vec<(String, String)>;

/// The labels after `{`, and the text after the closing `}`.
fn label_set(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("a label without =")?;
        let name = s[..eq].trim_end_matches([' ', '\t']);
        label_name(name)?;
        let after_eq = s[eq + 1..].trim_start_matches([' ', '\t']);
        let quoted = after_eq
            .strip_prefix('"')
            .ok_or("a label value must be quoted")?;
        let end = closing_quote(quoted).ok_or("an unterminated label value")?;
        let value = unescape(&quoted[..end], true)?;
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        labels.push((name.into(), value));
        s = quoted[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("labels are separated by commas".into());
        }
    }
}

/// The index of the quote that ends a label value (skipping escaped ones).
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// One label set of a histogram: its buckets (le, count), its sum and its count.
type Group = (Vec<(f64, f64)>, Option<f64>, Option<f64>);

/// Buckets cumulative and ascending, `+Inf` equal to `_count`, `_sum` and `_count` there.
fn check_histogram(f: &Family) -> Result<(), String> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for s in &f.samples {
        let mut rest: Vec<(String, String)> = s
            .labels
            .iter()
            .filter(|(n, _)| n != "le")
            .cloned()
            .collect();
        rest.sort();
        let g = groups.entry(format!("{rest:?}")).or_default();
        if s.name == format!("{}_bucket", f.name) {
            let le = s
                .label("le")
                .ok_or_else(|| format!("{}: a bucket without le", f.name))?;
            g.0.push((value(le)?, s.value));
        } else if s.name == format!("{}_sum", f.name) {
            g.1 = Some(s.value);
        } else if s.name == format!("{}_count", f.name) {
            g.2 = Some(s.value);
        } else {
            return Err(format!(
                "{}: {} does not belong to a histogram",
                f.name, s.name
            ));
        }
    }
    for (labels, (buckets, sum, count)) in groups {
        let what = format!("histogram {}{labels}", f.name);
        let count = count.ok_or_else(|| format!("{what}: no _count"))?;
        sum.ok_or_else(|| format!("{what}: no _sum"))?;
        for pair in buckets.windows(2) {
            if pair[0].0.partial_cmp(&pair[1].0) != Some(std::cmp::Ordering::Less) {
                return Err(format!(
                    "{what}: le not ascending ({} then {})",
                    pair[0].0, pair[1].0
                ));
            }
            if pair[1].1 < pair[0].1 {
                return Err(format!(
                    "{what}: buckets not cumulative at le={}",
                    pair[1].0
                ));
            }
        }
        match buckets.last() {
            Some(&(le, n)) if le == f64::INFINITY && n == count => {}
            _ => {
                return Err(format!(
                    "{what}: the +Inf bucket must be last and equal _count"
                ))
            }
        }
    }
    Ok(())
}
