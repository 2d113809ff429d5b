//! Stored definitions: how a `SHOW CREATE` text is kept byte-exact in the manifest, and
//! the check that a definition read back creates exactly the object it is recorded for.
//!
//! A manifest may have been written by someone else. A restore runs each definition as SQL
//! on the target, so before that it checks that the text is one `CREATE` of the recorded
//! kind, naming the recorded object in the recorded database, and nothing a `SHOW CREATE`
//! never produces (`OR REPLACE`, `CREATE TABLE ... SELECT`, a UDF's `SONAME`, a second
//! statement). The restore then sends it as a prepared statement, which the server parses
//! as exactly one statement.

/// Marks a definition stored byte-per-char (see [`decode_definition`]).
pub const LATIN1_MARKER: &str = "\u{0}bytes:";

/// Definitions are kept as text; bytes that are not UTF-8 (a body written under a latin1
/// client) are kept exactly by mapping each to one char U+0000..U+00FF after a marker.
pub fn decode_definition(b: Vec<u8>) -> String {
    match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => {
            let raw = e.into_bytes();
            let mut s = String::from(LATIN1_MARKER);
            s.extend(raw.iter().map(|&b| b as char));
            s
        }
    }
}

/// The bytes to send to the server for a stored definition.
pub fn definition_bytes(s: &str) -> Vec<u8> {
    match s.strip_prefix(LATIN1_MARKER) {
        Some(rest) => rest.chars().map(|c| c as u32 as u8).collect(),
        None => s.as_bytes().to_vec(),
    }
}

/// The kinds of object a manifest holds definitions of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `CREATE TABLE`.
    Table,
    /// `CREATE SEQUENCE` (MariaDB).
    Sequence,
    /// `CREATE VIEW`.
    View,
    /// `CREATE PROCEDURE`.
    Procedure,
    /// `CREATE FUNCTION` (a stored function, never a UDF).
    Function,
    /// `CREATE PACKAGE` (MariaDB, Oracle mode).
    Package,
    /// `CREATE PACKAGE BODY`.
    PackageBody,
    /// `CREATE TRIGGER`.
    Trigger,
    /// `CREATE EVENT`.
    Event,
}

impl ObjectKind {
    /// The kind a manifest's `StoredObject::kind` names, if it is one.
    pub fn from_stored(kind: &str) -> Option<Self> {
        Some(match kind {
            "VIEW" => ObjectKind::View,
            "PROCEDURE" => ObjectKind::Procedure,
            "FUNCTION" => ObjectKind::Function,
            "PACKAGE" => ObjectKind::Package,
            "PACKAGE BODY" => ObjectKind::PackageBody,
            "TRIGGER" => ObjectKind::Trigger,
            "EVENT" => ObjectKind::Event,
            _ => return None,
        })
    }

    /// The words after `CREATE` (and its options) that name the kind.
    fn keyword(self) -> &'static str {
        match self {
            ObjectKind::Table => "TABLE",
            ObjectKind::Sequence => "SEQUENCE",
            ObjectKind::View => "VIEW",
            ObjectKind::Procedure => "PROCEDURE",
            ObjectKind::Function => "FUNCTION",
            ObjectKind::Package => "PACKAGE",
            ObjectKind::PackageBody => "PACKAGE BODY",
            ObjectKind::Trigger => "TRIGGER",
            ObjectKind::Event => "EVENT",
        }
    }
}

/// The object a definition must create.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Its kind.
    pub kind: ObjectKind,
    /// The database it is created in (the restore's `USE`).
    pub database: &'a str,
    /// Its name.
    pub name: &'a str,
    /// For a trigger, the table it belongs to.
    pub table: Option<&'a str>,
}

/// Checks that `definition` is one `CREATE` of exactly the expected object. The error
/// says what is wrong without quoting the definition.
pub fn check(definition: &str, expected: &Expected) -> Result<(), String> {
    let bytes = definition_bytes(definition);
    let mut lx = Lexer::new(&bytes);
    let what = expected.kind.keyword();
    let not_create = || format!("is not a CREATE {what} statement");
    if !lx.next_header()?.is_word("CREATE") {
        return Err(not_create());
    }
    // The options SHOW CREATE writes between CREATE and the kind, in its order.
    let mut tok = lx.next_header()?;
    if tok.is_word("ALGORITHM") && expected.kind == ObjectKind::View {
        lx.expect_punct(b'=')?;
        lx.next_header()?.word().ok_or_else(not_create)?;
        tok = lx.next_header()?;
    }
    if tok.is_word("DEFINER") && !matches!(expected.kind, ObjectKind::Table | ObjectKind::Sequence)
    {
        lx.expect_punct(b'=')?;
        lx.definer()?;
        tok = lx.next_header()?;
    }
    if tok.is_word("SQL") && expected.kind == ObjectKind::View {
        if !lx.next_header()?.is_word("SECURITY") {
            return Err(not_create());
        }
        lx.next_header()?.word().ok_or_else(not_create)?;
        tok = lx.next_header()?;
    }
    if tok.is_word("AGGREGATE") && expected.kind == ObjectKind::Function {
        tok = lx.next_header()?;
    }
    let kind_ok = match expected.kind {
        ObjectKind::PackageBody => tok.is_word("PACKAGE") && lx.next_header()?.is_word("BODY"),
        ObjectKind::Package => tok.is_word("PACKAGE") && !lx.peek_word("BODY"),
        k => tok.is_word(k.keyword()),
    };
    if !kind_ok {
        return Err(not_create());
    }
    let (qualifier, name) = lx.object_name()?;
    if let Some(db) = &qualifier {
        if db.as_slice() != expected.database.as_bytes() {
            return Err(format!(
                "creates its {} in another database",
                what.to_lowercase()
            ));
        }
    }
    if name.as_slice() != expected.name.as_bytes() {
        return Err(format!("creates a {} of another name", what.to_lowercase()));
    }
    match expected.kind {
        ObjectKind::Table => check_table_tail(&mut lx)?,
        ObjectKind::Sequence | ObjectKind::View => check_simple_tail(&mut lx, expected.kind)?,
        ObjectKind::Procedure | ObjectKind::Function => {
            // A stored routine's parameter list (or, in Oracle mode, AS/IS/RETURN); a UDF
            // (`RETURNS ... SONAME`) loads a shared library and is never dumped.
            let t = lx.next_header()?;
            let ok = t.is_punct(b'(')
                || t.is_word("AS")
                || t.is_word("IS")
                || (expected.kind == ObjectKind::Function && t.is_word("RETURN"));
            if !ok {
                return Err(format!(
                    "is not a stored {} definition",
                    what.to_lowercase()
                ));
            }
        }
        ObjectKind::Package | ObjectKind::PackageBody => {
            let t = lx.next_header()?;
            if !(t.is_word("AS") || t.is_word("IS")) {
                return Err(not_create());
            }
        }
        ObjectKind::Trigger => check_trigger_tail(&mut lx, expected)?,
        ObjectKind::Event => {
            if !lx.next_header()?.is_word("ON") {
                return Err(not_create());
            }
        }
    }
    Ok(())
}

/// After a table's name: its definition list, then table options and partitioning, never
/// `LIKE`, `AS`/`SELECT` (which would copy rows from elsewhere) or a second statement.
fn check_table_tail(lx: &mut Lexer) -> Result<(), String> {
    if !lx.next_header()?.is_punct(b'(') {
        return Err("is not a CREATE TABLE with a definition list".into());
    }
    let mut depth = 1usize;
    let mut list_closed = false;
    // The previous token opened a parenthesis at the top level after the list.
    let mut opened_after_list = false;
    while let Some(t) = lx.next_code()? {
        if t.is_word("SELECT") || (opened_after_list && t.is_query_start()) {
            return Err("creates its table from a query".into());
        }
        opened_after_list = false;
        match t {
            Token::Punct(b'(') => {
                opened_after_list = list_closed && depth == 0;
                depth += 1;
            }
            Token::Punct(b')') => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "has unbalanced parentheses".to_string())?;
                list_closed |= depth == 0;
            }
            Token::Punct(b';') if depth == 0 => return lx.only_trailing(),
            Token::Word(_) if depth == 0 && list_closed => {
                let forbidden = ["AS", "LIKE", "IGNORE", "REPLACE", "VALUES", "TABLE"];
                if forbidden.iter().any(|w| t.is_word(w))
                    || (t.is_word("WITH") && !lx.peek_word("SYSTEM"))
                {
                    return Err("creates its table from a query".into());
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("has unbalanced parentheses".into());
    }
    Ok(())
}

/// After a sequence's or view's name: anything but a second statement (and, for a
/// sequence, a query).
fn check_simple_tail(lx: &mut Lexer, kind: ObjectKind) -> Result<(), String> {
    while let Some(t) = lx.next_code()? {
        if t.is_punct(b';') {
            return lx.only_trailing();
        }
        if kind == ObjectKind::Sequence && t.is_word("SELECT") {
            return Err("creates its sequence from a query".into());
        }
    }
    Ok(())
}

/// `BEFORE|AFTER event ON table`: the table must be the recorded one, in this database.
fn check_trigger_tail(lx: &mut Lexer, expected: &Expected) -> Result<(), String> {
    let mut guard = 0;
    loop {
        let t = lx.next_header()?;
        if t.is_word("ON") {
            break;
        }
        guard += 1;
        if guard > 8 || t.word().is_none() {
            return Err("is not a CREATE TRIGGER statement".into());
        }
    }
    let (qualifier, table) = lx.object_name()?;
    let same = |a: &[u8], b: &str| String::from_utf8_lossy(a).to_lowercase() == b.to_lowercase();
    if qualifier.is_some_and(|q| !same(&q, expected.database)) {
        return Err("is a trigger on a table of another database".into());
    }
    match expected.table {
        Some(t) if same(&table, t) => Ok(()),
        _ => Err("is a trigger on another table".into()),
    }
}

/// A token of SQL text, as far as the checks need: words, quoted names or strings, and
/// single punctuation characters.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a [u8]),
    /// A backtick- or double-quoted name (or string), unescaped.
    Quoted(Vec<u8>),
    /// A single-quoted string, unescaped.
    Str(Vec<u8>),
    Punct(u8),
}

impl Token<'_> {
    fn is_word(&self, w: &str) -> bool {
        matches!(self, Token::Word(b) if b.eq_ignore_ascii_case(w.as_bytes()))
    }
    fn is_punct(&self, c: u8) -> bool {
        matches!(self, Token::Punct(p) if *p == c)
    }
    fn word(&self) -> Option<&[u8]> {
        match self {
            Token::Word(b) => Some(b),
            _ => None,
        }
    }
    /// A word that starts a query expression after `(`.
    fn is_query_start(&self) -> bool {
        ["SELECT", "WITH", "VALUES", "TABLE"]
            .iter()
            .any(|w| self.is_word(w))
            || self.is_punct(b'(')
    }
}

/// A lexer that follows the server's quoting and comment rules closely enough for the
/// checks: strings and quoted names may hold anything, `/*! ... */` and `/*M! ... */`
/// hold code, other comments hold nothing.
struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    /// Inside an executable comment, whose `*/` ends it.
    in_exec_comment: bool,
    /// A backslash escapes the next byte in strings (no NO_BACKSLASH_ESCAPES).
    backslash_escapes: bool,
    /// `"` quotes names, not strings (ANSI_QUOTES).
    ansi_quotes: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer for the restore session's sql_mode, where tables, sequences and views are
    /// created.
    fn new(s: &'a [u8]) -> Self {
        Lexer {
            s,
            i: 0,
            in_exec_comment: false,
            backslash_escapes: true,
            ansi_quotes: false,
        }
    }

    /// A lexer for text parsed under `sql_mode`.
    fn with_mode(s: &'a [u8], sql_mode: &str) -> Self {
        let has = |m: &str| sql_mode.split(',').any(|x| x.eq_ignore_ascii_case(m));
        Lexer {
            backslash_escapes: !has("NO_BACKSLASH_ESCAPES"),
            ansi_quotes: has("ANSI_QUOTES")
                || has("ANSI")
                || has("ORACLE")
                || has("POSTGRESQL")
                || has("DB2")
                || has("MSSQL")
                || has("MAXDB"),
            ..Lexer::new(s)
        }
    }

    /// The next token of the statement's head, where SHOW CREATE never writes a comment:
    /// a comment there is refused, as is the end of the text.
    fn next_header(&mut self) -> Result<Token<'a>, String> {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
        if self.comment_starts() {
            return Err("has a comment in its CREATE clause".into());
        }
        self.token()?
            .ok_or_else(|| "ends before the object it creates".to_string())
    }

    /// The next token of code, skipping whitespace and comments (entering executable ones).
    fn next_code(&mut self) -> Result<Option<Token<'a>>, String> {
        loop {
            while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
                self.i += 1;
            }
            if self.in_exec_comment && self.s[self.i..].starts_with(b"*/") {
                self.in_exec_comment = false;
                self.i += 2;
                continue;
            }
            if !self.skip_comment()? {
                return self.token();
            }
        }
    }

    fn comment_starts(&self) -> bool {
        let r = &self.s[self.i.min(self.s.len())..];
        r.starts_with(b"/*")
            || r.starts_with(b"#")
            || (r.starts_with(b"--") && r.get(2).is_none_or(|c| c.is_ascii_whitespace()))
    }

    /// Skips one comment if one starts here; an executable comment is entered instead.
    fn skip_comment(&mut self) -> Result<bool, String> {
        let r = &self.s[self.i.min(self.s.len())..];
        if r.starts_with(b"/*!") || r.starts_with(b"/*M!") {
            if self.in_exec_comment {
                return Err("has a nested executable comment".into());
            }
            self.i += if r[2] == b'M' { 4 } else { 3 };
            while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            self.in_exec_comment = true;
            return Ok(true);
        }
        if r.starts_with(b"/*") {
            let end = find(&r[2..], b"*/").ok_or("has an unterminated comment")?;
            self.i += 2 + end + 2;
            return Ok(true);
        }
        if r.starts_with(b"#")
            || (r.starts_with(b"--") && r.get(2).is_none_or(|c| c.is_ascii_whitespace()))
        {
            let end = r.iter().position(|&c| c == b'\n').unwrap_or(r.len());
            self.i += end;
            return Ok(true);
        }
        Ok(false)
    }

    fn token(&mut self) -> Result<Option<Token<'a>>, String> {
        let Some(&c) = self.s.get(self.i) else {
            if self.in_exec_comment {
                return Err("has an unterminated comment".into());
            }
            return Ok(None);
        };
        if is_word_byte(c) {
            let start = self.i;
            while self.s.get(self.i).copied().is_some_and(is_word_byte) {
                self.i += 1;
            }
            return Ok(Some(Token::Word(&self.s[start..self.i])));
        }
        match c {
            b'`' | b'"' => Ok(Some(Token::Quoted(self.quoted(c)?))),
            b'\'' => Ok(Some(Token::Str(self.quoted(c)?))),
            _ => {
                self.i += 1;
                Ok(Some(Token::Punct(c)))
            }
        }
    }

    /// A quoted name or string, unescaped: a doubled quote is one quote; in strings a
    /// backslash takes the next byte (as without NO_BACKSLASH_ESCAPES, the restore's mode).
    fn quoted(&mut self, q: u8) -> Result<Vec<u8>, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("has an unterminated quoted name or string".into());
            };
            self.i += 1;
            if c == q {
                if self.s.get(self.i) == Some(&q) {
                    out.push(q);
                    self.i += 1;
                    continue;
                }
                return Ok(out);
            }
            let is_name = q == b'`' || (q == b'"' && self.ansi_quotes);
            if c == b'\\' && !is_name && self.backslash_escapes {
                if let Some(&n) = self.s.get(self.i) {
                    out.push(n);
                    self.i += 1;
                    continue;
                }
            }
            out.push(c);
        }
    }

    fn peek_word(&mut self, w: &str) -> bool {
        let saved = (self.i, self.in_exec_comment);
        let found = matches!(self.next_code(), Ok(Some(t)) if t.is_word(w));
        (self.i, self.in_exec_comment) = saved;
        found
    }

    fn expect_punct(&mut self, c: u8) -> Result<(), String> {
        if self.next_header()?.is_punct(c) {
            Ok(())
        } else {
            Err("has a malformed CREATE clause".into())
        }
    }

    /// `DEFINER = user[@host]`, `CURRENT_USER[()]` or a role.
    fn definer(&mut self) -> Result<(), String> {
        let user = self.next_header()?;
        if user.is_word("CURRENT_USER") {
            if self.peek_punct(b'(') {
                self.expect_punct(b'(')?;
                self.expect_punct(b')')?;
            }
            return Ok(());
        }
        if !matches!(user, Token::Word(_) | Token::Quoted(_) | Token::Str(_)) {
            return Err("has a malformed DEFINER".into());
        }
        if self.peek_punct(b'@') {
            self.expect_punct(b'@')?;
            let host = self.next_header()?;
            if !matches!(host, Token::Word(_) | Token::Quoted(_) | Token::Str(_)) {
                return Err("has a malformed DEFINER".into());
            }
            // A bare host name such as localhost.localdomain lexes as words and dots.
            while self.peek_punct(b'.') {
                self.expect_punct(b'.')?;
                self.next_header()?;
            }
        }
        Ok(())
    }

    fn peek_punct(&mut self, c: u8) -> bool {
        self.s[self.i.min(self.s.len())..]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            == Some(&c)
    }

    /// Skips tokens (parentheses and all) up to the first top-level `word`.
    fn skip_to_word(&mut self, word: &str) -> Result<(), String> {
        let mut depth = 0usize;
        while let Some(t) = self.next_code()? {
            match t {
                Token::Punct(b'(') => depth += 1,
                Token::Punct(b')') => depth = depth.saturating_sub(1),
                _ if depth == 0 && t.is_word(word) => return Ok(()),
                _ => {}
            }
        }
        Err(format!("has no {word}"))
    }

    /// `user[@host]`, each part quoted (`` ` ``, `"` or `'`) or a bare word.
    fn account(&mut self) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
        let part = |t: Token| match t {
            Token::Word(w) => Ok(w.to_vec()),
            Token::Quoted(q) | Token::Str(q) => Ok(q),
            _ => Err("does not name an account".to_string()),
        };
        let user = part(self.next_header()?)?;
        if self.s.get(self.i) == Some(&b'@') {
            self.i += 1;
            let host = part(self.next_header()?)?;
            return Ok((user, Some(host)));
        }
        Ok((user, None))
    }

    /// `name` or `db.name`, each a bare word or a quoted name.
    fn object_name(&mut self) -> Result<(Option<Vec<u8>>, Vec<u8>), String> {
        let first = self.name_part()?;
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            let second = self.name_part()?;
            return Ok((Some(first), second));
        }
        Ok((None, first))
    }

    fn name_part(&mut self) -> Result<Vec<u8>, String> {
        match self.next_header()? {
            Token::Word(w) => Ok(w.to_vec()),
            Token::Quoted(q) => Ok(q),
            _ => Err("does not name the object it creates".into()),
        }
    }

    /// After a top-level `;`, only whitespace and comments may follow.
    fn only_trailing(&mut self) -> Result<(), String> {
        match self.next_code()? {
            None => Ok(()),
            Some(_) => Err("holds more than one statement".into()),
        }
    }
}

/// Checks that a routine, trigger or event definition holds no statement after its body,
/// for servers that cannot prepare it (MySQL refuses to prepare CREATE PROCEDURE,
/// FUNCTION, TRIGGER and EVENT), so that sending it as text runs nothing else. A `;` may
/// stand only inside `BEGIN ... END` (or a `CASE`), or last. `sql_mode` is the one the
/// text is parsed under, which decides how its strings end.
pub fn single_statement(definition: &str, sql_mode: Option<&str>) -> Result<(), String> {
    let bytes = definition_bytes(definition);
    let mut lx = Lexer::with_mode(&bytes, sql_mode.unwrap_or(""));
    let mut blocks = 0usize;
    let mut parens = 0usize;
    let mut after_end = false;
    while let Some(t) = lx.next_code()? {
        let closes_other = after_end
            && ["IF", "LOOP", "WHILE", "REPEAT"]
                .iter()
                .any(|w| t.is_word(w));
        if after_end && !closes_other && !t.is_word("CASE") {
            // A plain END (perhaps followed by its label) closed a BEGIN or a CASE.
            blocks = blocks.saturating_sub(1);
        }
        if after_end && t.is_word("CASE") {
            blocks = blocks.saturating_sub(1);
            after_end = false;
            continue;
        }
        after_end = false;
        match t {
            Token::Word(_) if t.is_word("BEGIN") || t.is_word("CASE") => blocks += 1,
            Token::Word(_) if t.is_word("END") => after_end = true,
            Token::Punct(b'(') => parens += 1,
            Token::Punct(b')') => parens = parens.saturating_sub(1),
            Token::Punct(b';') if blocks == 0 && parens == 0 => return lx.only_trailing(),
            _ => {}
        }
    }
    Ok(())
}

/// Checks that an account statement of a dump concerns exactly its account: `CREATE USER`
/// or `CREATE ROLE` of that one account, `GRANT ... TO` it alone, or `SET DEFAULT ROLE
/// ... FOR` it. `host` is `None` for a MariaDB role.
pub fn check_account_statement(
    sql: &str,
    user: &str,
    host: Option<&str>,
    role: bool,
) -> Result<(), String> {
    let bytes = definition_bytes(sql);
    let mut lx = Lexer::new(&bytes);
    let first = lx.next_header()?;
    let target = if first.is_word("CREATE") {
        let kind = lx.next_header()?;
        if !(kind.is_word("USER") || (role && kind.is_word("ROLE"))) {
            return Err("is not a CREATE USER or CREATE ROLE statement".into());
        }
        lx.account()?
    } else if first.is_word("GRANT") {
        lx.skip_to_word("TO")?;
        lx.account()?
    } else if first.is_word("SET") {
        if !(lx.next_header()?.is_word("DEFAULT") && lx.next_header()?.is_word("ROLE")) {
            return Err("is not a GRANT or SET DEFAULT ROLE statement".into());
        }
        lx.skip_to_word("FOR")?;
        lx.account()?
    } else {
        return Err("is not a CREATE USER, GRANT or SET DEFAULT ROLE statement".into());
    };
    if target.0 != user.as_bytes() || target.1.as_deref() != host.map(str::as_bytes) {
        return Err("concerns another account".into());
    }
    if lx.peek_punct(b',') {
        return Err("concerns more than one account".into());
    }
    Ok(())
}

/// The qualified names (`` `db`.`name` ``) a definition mentions outside strings and
/// comments, in order: what a view reads, as far as names written in full tell.
pub fn qualified_names(definition: &str) -> Vec<(String, String)> {
    let bytes = definition_bytes(definition);
    let mut lx = Lexer::new(&bytes);
    let mut out = Vec::new();
    let mut last: Option<(Vec<u8>, usize)> = None;
    while let Ok(Some(t)) = lx.next_code() {
        let end = lx.i;
        if let Token::Quoted(q) = &t {
            if let Some((db, db_end)) = &last {
                // `db`.`name`: the dot right after the first name, the second right after it.
                if bytes.get(*db_end) == Some(&b'.') && end - q.len() >= db_end + 2 {
                    out.push((
                        String::from_utf8_lossy(db).into_owned(),
                        String::from_utf8_lossy(q).into_owned(),
                    ));
                    last = None;
                    continue;
                }
            }
            last = Some((q.clone(), end));
        } else if !t.is_punct(b'.') {
            last = None;
        }
    }
    out
}

/// The first `n` backtick-quoted names of `s`, unescaped.
pub fn quoted_names(s: &str, n: usize) -> Vec<String> {
    let mut lx = Lexer::new(s.as_bytes());
    let mut out = Vec::new();
    while out.len() < n {
        match lx.next_code() {
            Ok(Some(Token::Quoted(q))) => out.push(String::from_utf8_lossy(&q).into_owned()),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    out
}

/// The definition with its `DEFINER=...` clause made `DEFINER=CURRENT_USER`, so that the
/// object is created as the restoring account's (`restore --definer current`).
pub fn with_current_definer(definition: &str) -> Result<String, String> {
    let bytes = definition_bytes(definition);
    let mut lx = Lexer::new(&bytes);
    if !lx.next_header()?.is_word("CREATE") {
        return Err("is not a CREATE statement".into());
    }
    loop {
        let start = {
            while lx.s.get(lx.i).is_some_and(u8::is_ascii_whitespace) {
                lx.i += 1;
            }
            lx.i
        };
        let t = lx.next_header()?;
        if t.is_word("DEFINER") {
            lx.expect_punct(b'=')?;
            lx.definer()?;
            let mut out = bytes[..start].to_vec();
            out.extend_from_slice(b"DEFINER=CURRENT_USER");
            out.extend_from_slice(&bytes[lx.i..]);
            return Ok(decode_definition(out));
        }
        if t.is_word("ALGORITHM") {
            lx.expect_punct(b'=')?;
            lx.next_header()?;
            continue;
        }
        // No DEFINER clause: the object already runs as whoever creates it.
        return Ok(definition.to_string());
    }
}

/// A column of a `CREATE TABLE` as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnShape {
    /// Its name.
    pub name: String,
    /// The first word of its type, lower case (`int`, `enum`, `varchar`...).
    pub type_word: String,
    /// A VIRTUAL/STORED generated column (computed by the server, never in data files);
    /// a system-versioning `AS ROW START/END` column is not one.
    pub generated: bool,
}

/// The columns of a table definition, in order, and whether it is system-versioned (its
/// implicit `row_start`/`row_end` then hold history, though the list does not name them).
pub fn table_columns(definition: &str) -> Result<(Vec<ColumnShape>, bool), String> {
    let bytes = definition_bytes(definition);
    let mut lx = Lexer::new(&bytes);
    // Up to the definition list; `check` has already vetted this part.
    loop {
        match lx.next_code()? {
            Some(Token::Punct(b'(')) => break,
            Some(_) => {}
            None => return Err("has no definition list".into()),
        }
    }
    let mut columns = Vec::new();
    let mut item: Vec<Token> = Vec::new();
    let mut depth = 1usize;
    let mut versioned = false;
    while let Some(t) = lx.next_code()? {
        match t {
            Token::Punct(b'(') => depth += 1,
            Token::Punct(b')') => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            columns.extend(column_of(&item));
            item.clear();
            // After the list: table options.
            while let Some(t) = lx.next_code()? {
                if t.is_word("WITH") && lx.peek_word("SYSTEM") {
                    versioned = true;
                }
            }
            return Ok((columns, versioned));
        }
        if depth == 1 && t.is_punct(b',') {
            columns.extend(column_of(&item));
            item.clear();
        } else {
            item.push(t);
        }
    }
    Err("has unbalanced parentheses".into())
}

/// The column an item of a definition list defines, if it defines one (not a key or a
/// constraint): a quoted name first, then the type.
fn column_of(item: &[Token]) -> Option<ColumnShape> {
    let Some(Token::Quoted(name)) = item.first() else {
        return None;
    };
    let type_word = item.get(1)?.word()?.to_ascii_lowercase();
    let generated = item
        .windows(2)
        .any(|w| w[0].is_word("AS") && w[1].is_punct(b'('));
    Some(ColumnShape {
        name: String::from_utf8_lossy(name).into_owned(),
        type_word: String::from_utf8_lossy(&type_word).into_owned(),
        generated,
    })
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table<'a>(db: &'a str, name: &'a str) -> Expected<'a> {
        Expected {
            kind: ObjectKind::Table,
            database: db,
            name,
            table: None,
        }
    }

    fn object<'a>(kind: ObjectKind, name: &'a str) -> Expected<'a> {
        Expected {
            kind,
            database: "d",
            name,
            table: Some("t"),
        }
    }

    #[test]
    fn non_utf8_definitions_keep_their_bytes() {
        let raw = b"CREATE PROCEDURE p() SELECT '\xe9'".to_vec();
        let kept = decode_definition(raw.clone());
        assert_eq!(definition_bytes(&kept), raw);
        let utf8 = "SELECT 'é'".to_string();
        assert_eq!(decode_definition(utf8.clone().into_bytes()), utf8);
    }

    #[test]
    fn show_create_output_of_every_kind_passes() {
        let t = "CREATE TABLE `we``ird \"t\"` (\n  `id` int(11) NOT NULL,\n  `c` varchar(10) DEFAULT 'a;b' CHECK (`c` like 'x%'),\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='select; drop'\n PARTITION BY RANGE (`id`)\n(PARTITION `p0` VALUES LESS THAN (10) ENGINE = InnoDB)";
        check(t, &table("d", "we`ird \"t\"")).unwrap();
        let versioned = "CREATE TABLE `h` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB WITH SYSTEM VERSIONING\n PARTITION BY SYSTEM_TIME (PARTITION `p_hist` HISTORY, PARTITION `p_cur` CURRENT)";
        check(versioned, &table("d", "h")).unwrap();
        let mysql = "CREATE TABLE `p` (\n  `id` int NOT NULL\n) ENGINE=InnoDB\n/*!50100 PARTITION BY HASH (`id`)\nPARTITIONS 4 */";
        check(mysql, &table("d", "p")).unwrap();
        let seq = "CREATE SEQUENCE `s` start with 1 minvalue 1 maxvalue 9223372036854775806 increment by 1 cache 1000 nocycle ENGINE=InnoDB";
        check(seq, &object(ObjectKind::Sequence, "s")).unwrap();
        let view = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`127.0.0.1` SQL SECURITY DEFINER VIEW `d`.`v` AS select 1 AS `a;b`";
        check(view, &object(ObjectKind::View, "v")).unwrap();
        let proc = "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`(IN a INT)\nBEGIN\n  SELECT 1; SELECT 2;\nEND";
        check(proc, &object(ObjectKind::Procedure, "p")).unwrap();
        let func = "CREATE DEFINER=`root`@`localhost` FUNCTION `f`() RETURNS int(11)\nRETURN 1";
        check(func, &object(ObjectKind::Function, "f")).unwrap();
        let pkg = "CREATE DEFINER=\"root\"@\"localhost\" PACKAGE \"pkg\" AS\n  FUNCTION g(p DECIMAL) RETURN DECIMAL;\nEND";
        check(pkg, &object(ObjectKind::Package, "pkg")).unwrap();
        let body =
            "CREATE DEFINER=\"root\"@\"localhost\" PACKAGE BODY \"pkg\" AS\n  x INT := 1;\nEND";
        check(body, &object(ObjectKind::PackageBody, "pkg")).unwrap();
        let trg = "CREATE DEFINER=`root`@`localhost` TRIGGER `d`.`tr`\nBEFORE INSERT ON `d`.`t` FOR EACH ROW\nBEGIN SET NEW.a = 1; END";
        check(trg, &object(ObjectKind::Trigger, "tr")).unwrap();
        let bare = "CREATE DEFINER=`root`@`localhost` TRIGGER tr AFTER UPDATE ON T FOR EACH ROW SET @x = 1";
        check(bare, &object(ObjectKind::Trigger, "tr")).unwrap();
        let ev =
            "CREATE DEFINER=`root`@`localhost` EVENT `e` ON SCHEDULE EVERY 1 DAY DO DELETE FROM t";
        check(ev, &object(ObjectKind::Event, "e")).unwrap();
        let latin1 = decode_definition(
            b"CREATE DEFINER=`root`@`localhost` PROCEDURE `p`() SELECT '\xe9'".to_vec(),
        );
        check(&latin1, &object(ObjectKind::Procedure, "p")).unwrap();
    }

    #[test]
    fn table_columns_are_read_from_the_definition_list() {
        let t = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a,b` enum('x','y)') DEFAULT 'x',\n  `g` int(11) GENERATED ALWAYS AS (`id` + 1) VIRTUAL,\n  `rs` timestamp(6) GENERATED ALWAYS AS ROW START,\n  PRIMARY KEY (`id`),\n  KEY `k` (`a,b`)\n) ENGINE=InnoDB WITH SYSTEM VERSIONING";
        let (cols, versioned) = table_columns(t).unwrap();
        let shape: Vec<(&str, &str, bool)> = cols
            .iter()
            .map(|c| (c.name.as_str(), c.type_word.as_str(), c.generated))
            .collect();
        assert_eq!(
            shape,
            [
                ("id", "int", false),
                ("a,b", "enum", false),
                ("g", "int", true),
                ("rs", "timestamp", false)
            ]
        );
        assert!(versioned);
        let (_, versioned) =
            table_columns("CREATE TABLE `t` (`id` int) COMMENT='WITH SYSTEM'").unwrap();
        assert!(!versioned);
    }

    #[test]
    fn anything_but_the_recorded_create_is_refused() {
        let cases: &[(&str, Expected)] = &[
            ("DROP DATABASE mysql", table("d", "t")),
            (
                "CREATE TABLE `t` (a int); DROP DATABASE mysql",
                table("d", "t"),
            ),
            (
                "CREATE TABLE `t` (a int) /*!; DROP DATABASE mysql */",
                table("d", "t"),
            ),
            ("CREATE TABLE `x` (a int)", table("d", "t")),
            ("CREATE TABLE `mysql`.`t` (a int)", table("d", "t")),
            ("CREATE OR REPLACE TABLE `t` (a int)", table("d", "t")),
            ("CREATE TEMPORARY TABLE `t` (a int)", table("d", "t")),
            ("CREATE TABLE IF NOT EXISTS `t` (a int)", table("d", "t")),
            ("CREATE TABLE `t` LIKE `mysql`.`user`", table("d", "t")),
            (
                "CREATE TABLE `t` (a text) SELECT LOAD_FILE('/etc/passwd') a",
                table("d", "t"),
            ),
            (
                "CREATE TABLE `t` (a text) ENGINE=InnoDB AS (SELECT 1)",
                table("d", "t"),
            ),
            ("CREATE TABLE `t` (a text) (SELECT 1)", table("d", "t")),
            ("CREATE TABLE `t` (a text) IGNORE SELECT 1", table("d", "t")),
            (
                "CREATE TABLE `t` (a int) WITH c AS (SELECT 1) SELECT * FROM c",
                table("d", "t"),
            ),
            (
                "CREATE TABLE `t` (a int CHECK (a IN (SELECT 1)))",
                table("d", "t"),
            ),
            ("CREATE /* x */ TABLE `t` (a int)", table("d", "t")),
            ("CREATE VIEW `t` AS SELECT 1", table("d", "t")),
            ("CREATE TABLE `t` (a int", table("d", "t")),
            ("CREATE TABLE `t` (a int) COMMENT 'x", table("d", "t")),
            (
                "SELECT 1 INTO OUTFILE '/tmp/x'",
                object(ObjectKind::Procedure, "p"),
            ),
            (
                "CREATE FUNCTION `f` RETURNS STRING SONAME 'evil.so'",
                object(ObjectKind::Function, "f"),
            ),
            (
                "CREATE PROCEDURE `q`() SELECT 1",
                object(ObjectKind::Procedure, "p"),
            ),
            (
                "CREATE PROCEDURE `other`.`p`() SELECT 1",
                object(ObjectKind::Procedure, "p"),
            ),
            (
                "CREATE FUNCTION `p`() RETURNS INT RETURN 1",
                object(ObjectKind::Procedure, "p"),
            ),
            (
                "CREATE PACKAGE BODY `pkg` AS END",
                object(ObjectKind::Package, "pkg"),
            ),
            (
                "CREATE VIEW `v` AS SELECT 1; DROP DATABASE d",
                object(ObjectKind::View, "v"),
            ),
            (
                "CREATE SEQUENCE `s`; DROP DATABASE d",
                object(ObjectKind::Sequence, "s"),
            ),
            (
                "CREATE TRIGGER `tr` BEFORE INSERT ON `u` FOR EACH ROW SET @a = 1",
                object(ObjectKind::Trigger, "tr"),
            ),
            (
                "CREATE TRIGGER `tr` BEFORE INSERT ON `mysql`.`t` FOR EACH ROW SET @a = 1",
                object(ObjectKind::Trigger, "tr"),
            ),
            (
                "CREATE EVENT `e2` ON SCHEDULE EVERY 1 DAY DO SELECT 1",
                object(ObjectKind::Event, "e"),
            ),
            ("", table("d", "t")),
            ("CREATE", table("d", "t")),
        ];
        for (sql, expected) in cases {
            assert!(check(sql, expected).is_err(), "accepted: {sql}");
        }
    }

    #[test]
    fn a_routine_body_holds_one_statement() {
        let ok = [
            "CREATE PROCEDURE `p`() BEGIN SELECT 1; lbl: LOOP LEAVE lbl; END LOOP lbl; END",
            "CREATE PROCEDURE `p`() BEGIN IF 1 THEN SELECT CASE WHEN 1 THEN 2 END; END IF; CASE 1 WHEN 1 THEN SELECT 1; END CASE; END;",
            "CREATE PROCEDURE `p`() SELECT ';'",
            "CREATE TRIGGER `t` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a = 1",
            "CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM t; END",
        ];
        for sql in ok {
            single_statement(sql, None).unwrap();
        }
        let bad = [
            "CREATE PROCEDURE `p`() SELECT 1; DROP DATABASE d",
            "CREATE PROCEDURE `p`() BEGIN SELECT 1; END; DROP DATABASE d",
            "CREATE PROCEDURE `p`() BEGIN IF 1 THEN SELECT 1; END IF; END; DROP DATABASE d",
        ];
        for sql in bad {
            assert!(single_statement(sql, None).is_err(), "accepted: {sql}");
        }
        // Under NO_BACKSLASH_ESCAPES the string ends at the second quote: the DROP is code.
        let tricky = "CREATE PROCEDURE `p`() SELECT 'a\\'; DROP DATABASE d; SELECT '";
        assert!(single_statement(tricky, Some("NO_BACKSLASH_ESCAPES")).is_err());
        assert!(single_statement(tricky, None).is_ok());
    }

    #[test]
    fn account_statements_concern_their_account_only() {
        let app = |sql: &str| check_account_statement(sql, "app", Some("%"), false);
        app("CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*2B60' WITH MAX_QUERIES_PER_HOUR 100")
            .unwrap();
        app("GRANT `writer` TO `app`@`%`").unwrap();
        app("GRANT SELECT (`status`, `id`), UPDATE (`status`) ON `shop`.`orders` TO `app`@`%`")
            .unwrap();
        app("GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*2B60' REQUIRE SSL WITH GRANT OPTION").unwrap();
        app("SET DEFAULT ROLE `writer` FOR `app`@`%`").unwrap();
        check_account_statement("CREATE ROLE `reader`", "reader", None, true).unwrap();
        check_account_statement("GRANT SELECT ON `shop`.* TO `reader`", "reader", None, true)
            .unwrap();
        for bad in [
            "CREATE USER `root`@`%` IDENTIFIED BY 'x'",
            "CREATE USER `app`@`%`, `evil`@`%`",
            "CREATE OR REPLACE USER `app`@`%`",
            "GRANT ALL ON *.* TO `evil`@`%`",
            "GRANT ALL ON *.* TO `app`@`%`, `evil`@`%`",
            "GRANT ALL ON *.* TO `app`",
            "DROP USER `app`@`%`",
            "SET PASSWORD FOR `app`@`%` = PASSWORD('x')",
            "CREATE ROLE `app`",
        ] {
            assert!(app(bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn definers_become_the_current_user() {
        let v = "CREATE ALGORITHM=UNDEFINED DEFINER=`app`@`%` SQL SECURITY DEFINER VIEW `d`.`v` AS select 1";
        assert_eq!(
            with_current_definer(v).unwrap(),
            "CREATE ALGORITHM=UNDEFINED DEFINER=CURRENT_USER SQL SECURITY DEFINER VIEW `d`.`v` AS select 1"
        );
        let p = "CREATE DEFINER=\"root\"@\"localhost\" PACKAGE \"pkg\" AS END";
        assert_eq!(
            with_current_definer(p).unwrap(),
            "CREATE DEFINER=CURRENT_USER PACKAGE \"pkg\" AS END"
        );
        let latin1 =
            decode_definition(b"CREATE DEFINER=`a`@`b` PROCEDURE `p`() SELECT '\xe9'".to_vec());
        assert_eq!(
            definition_bytes(&with_current_definer(&latin1).unwrap()),
            b"CREATE DEFINER=CURRENT_USER PROCEDURE `p`() SELECT '\xe9'"
        );
        assert_eq!(
            with_current_definer("CREATE TABLE `t` (a int)").unwrap(),
            "CREATE TABLE `t` (a int)"
        );
    }

    #[test]
    fn qualified_names_are_found_outside_strings() {
        let v = "CREATE VIEW `d`.`v` AS select `a`.`t`.`x` AS `x` from `a`.`t` join `b` where 'c`.`z' = `e` . `f`";
        assert_eq!(
            qualified_names(v),
            [
                ("d".to_string(), "v".to_string()),
                ("a".to_string(), "t".to_string()),
                ("a".to_string(), "t".to_string())
            ]
        );
    }

    #[test]
    fn a_trailing_semicolon_or_comment_is_one_statement() {
        check("CREATE TABLE `t` (a int);", &table("d", "t")).unwrap();
        check("CREATE TABLE `t` (a int); -- done", &table("d", "t")).unwrap();
        check(
            "CREATE VIEW `v` AS SELECT 'a\\'; b' ;",
            &object(ObjectKind::View, "v"),
        )
        .unwrap();
    }
}
