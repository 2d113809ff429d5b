//! MySQL/MariaDB option files (`my.cnf`, `~/.my.cnf`, `~/.mylogin.cnf`), read the way the
//! `mysql` and `mariadb` clients read them, so that mysnap connects with the settings the
//! user already has for those clients.
//!
//! This module only reads: it finds the files in the clients' order, parses their groups,
//! `key[=value]` lines, quotes, escapes and `!include`/`!includedir` directives, decodes
//! `~/.mylogin.cnf`, and applies the clients' permission checks. Interpreting the settings
//! (which keys exist, what `skip-`/`disable-`/`enable-` prefixes mean, whether an unknown
//! `loose-` option is ignored) is the caller's job: keys are kept as written, normalised only
//! in case and `_`/`-`.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use aes::cipher::{Array, BlockCipherDecrypt, KeyInit};
use aes::Aes128;

use crate::error::{Error, Result};

/// Deepest `!include`/`!includedir` nesting: the clients stop at 10 too, and a file that
/// includes itself must end in an error rather than a stack overflow.
const MAX_INCLUDE_DEPTH: usize = 10;

/// The groups mysnap reads from every option file, before any group suffix.
const BASE_GROUPS: [&str; 4] = ["client", "client-server", "client-mariadb", "mysnap"];

/// Keys whose values are secrets: masked when printed, and checked for file permissions.
/// (`password1..3` are MySQL 8's multi-factor passwords.)
const SECRET_KEYS: [&str; 4] = ["password", "password1", "password2", "password3"];

/// Where to read options from: the client's --no-defaults, --defaults-file,
/// --defaults-extra-file, --defaults-group-suffix and --login-path.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Read no option file at all, not even `~/.mylogin.cnf`.
    pub no_defaults: bool,
    /// Read only this file (it must exist), plus `~/.mylogin.cnf`.
    pub defaults_file: Option<PathBuf>,
    /// Also read this file (it must exist), after the system files and before `~/.my.cnf`.
    pub defaults_extra_file: Option<PathBuf>,
    /// Also read each group with this suffix appended; falls back to env `MYSQL_GROUP_SUFFIX`.
    pub group_suffix: Option<String>,
    /// Also read this group (login path) from `~/.mylogin.cnf`.
    pub login_path: Option<String>,
}

/// One `key[=value]` read from a group of a file.
///
/// Boolean prefixes (`skip-ssl`, `disable-x`, `enable-x`) stay part of the key: the caller
/// interprets them.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Lower case, `_` written `-`, without a `loose-` prefix.
    pub key: String,
    /// `None` for a bare key (`skip-ssl`, `compress`); quotes removed and escapes resolved.
    pub value: Option<String>,
    /// Written with the `loose-` prefix: the caller ignores it when it does not know the key.
    pub loose: bool,
    /// The group it came from, lower case.
    pub group: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Its line in that file (1-based).
    pub line: usize,
}

/// Everything read: settings in reading order (a later one overrides an earlier one of the
/// same key), the files actually read, and warnings to print (one line each).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The settings of the wanted groups, in reading order.
    pub settings: Vec<Setting>,
    /// The files read, in order (included files where they were included).
    pub files: Vec<PathBuf>,
    /// One-line warnings for the user; they never hold a password.
    pub warnings: Vec<String>,
}

impl Loaded {
    /// The last value of `key` in any of `groups` (by reading order).
    pub fn get(&self, groups: &[String], key: &str) -> Option<&Setting> {
        let key = normalize_key(key);
        self.settings
            .iter()
            .rev()
            .find(|s| s.key == key && in_groups(groups, &s.group))
    }

    /// The settings of these groups, last value per key, in first-seen order: what
    /// `--print-defaults` prints (as `--key=value`, passwords masked as `--password=*****`).
    pub fn print_defaults(&self, groups: &[String]) -> Vec<String> {
        let mut order: Vec<&str> = Vec::new();
        let mut last: HashMap<&str, &Setting> = HashMap::new();
        for s in self.settings.iter().filter(|s| in_groups(groups, &s.group)) {
            if last.insert(&s.key, s).is_none() {
                order.push(&s.key);
            }
        }
        order.iter().map(|k| render(last[k])).collect()
    }
}

/// `--key=value` as the client would pass it on, with secrets masked.
fn render(s: &Setting) -> String {
    let loose = if s.loose { "loose-" } else { "" };
    match &s.value {
        None => format!("--{loose}{}", s.key),
        Some(_) if is_secret(&s.key) => format!("--{loose}{}=*****", s.key),
        Some(v) => format!("--{loose}{}={v}", s.key),
    }
}

/// The groups mysnap reads: client, client-server, client-mariadb, mysnap, and each of those
/// again with the group suffix appended when one is given (e.g. suffix `_backup` adds
/// client_backup ...), plus the login path's group for ~/.mylogin.cnf.
pub fn groups(sources: &Sources, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut all = file_groups(sources, env);
    if let Some(path) = &sources.login_path {
        let path = path.to_lowercase();
        if !all.contains(&path) {
            all.push(path);
        }
    }
    all
}

/// The groups read from the ordinary option files: those of [`groups`] without the login
/// path, which the client reads from `~/.mylogin.cnf` only.
fn file_groups(sources: &Sources, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut all: Vec<String> = BASE_GROUPS.iter().map(|g| g.to_string()).collect();
    let suffix = sources
        .group_suffix
        .clone()
        .or_else(|| env("MYSQL_GROUP_SUFFIX"));
    // The clients append the suffix literally: `_x` reads [client_x].
    if let Some(suffix) = suffix.filter(|s| !s.is_empty()) {
        all.extend(
            BASE_GROUPS
                .iter()
                .map(|g| format!("{g}{suffix}").to_lowercase()),
        );
    }
    all
}

/// Reads the option files in the client's order. `home` is the user's home directory
/// (None: none).
pub fn load(
    sources: &Sources,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<Loaded> {
    let login = login_file(env, home);
    load_from(sources, env, &system_files(env), home, login.as_deref())
}

/// `/etc/my.cnf`, `/etc/mysql/my.cnf`, then `$MARIADB_HOME/my.cnf` (or `$MYSQL_HOME/my.cnf`).
fn system_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut files = vec![
        PathBuf::from("/etc/my.cnf"),
        PathBuf::from("/etc/mysql/my.cnf"),
    ];
    let home = non_empty(env("MARIADB_HOME")).or_else(|| non_empty(env("MYSQL_HOME")));
    if let Some(dir) = home {
        files.push(Path::new(&dir).join("my.cnf"));
    }
    files
}

/// `~/.mylogin.cnf`, or `$MYSQL_TEST_LOGIN_FILE` which the MySQL client honours instead.
fn login_file(env: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    match non_empty(env("MYSQL_TEST_LOGIN_FILE")) {
        Some(file) => Some(PathBuf::from(file)),
        None => home.map(|h| h.join(".mylogin.cnf")),
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// [`load`] with the system files and the login file given, so that tests can point them
/// into a temporary directory.
fn load_from(
    sources: &Sources,
    env: &dyn Fn(&str) -> Option<String>,
    system: &[PathBuf],
    home: Option<&Path>,
    login: Option<&Path>,
) -> Result<Loaded> {
    let mut out = Loaded::default();
    if sources.no_defaults {
        return Ok(out);
    }
    let plain = file_groups(sources, env);
    if let Some(file) = &sources.defaults_file {
        read_required(file, &plain, &mut out)?;
    } else {
        for file in system {
            read_optional(file, &plain, &mut out)?;
        }
        if let Some(file) = &sources.defaults_extra_file {
            read_required(file, &plain, &mut out)?;
        }
        if let Some(home) = home {
            read_optional(&home.join(".my.cnf"), &plain, &mut out)?;
        }
    }
    // The MySQL client reads the login file even with --defaults-file.
    if let Some(login) = login {
        read_login_file(login, &groups(sources, env), &mut out)?;
    }
    Ok(out)
}

/// Reads a file the client looks for by default: a missing one is skipped silently, one
/// that cannot be looked at with a warning (the client skips it silently too). Errors in
/// its text are errors, as for the client.
fn read_optional(path: &Path, groups: &[String], out: &mut Loaded) -> Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => parse_file(path, groups, out, 0),
        Ok(_) => Ok(()),
        Err(e) if is_missing(&e) => Ok(()),
        Err(e) => {
            let warning = format!("option file {} skipped: {e}", path.display());
            out.warnings.push(warning);
            Ok(())
        }
    }
}

/// Reads a file the user named (--defaults-file, --defaults-extra-file): it must exist.
fn read_required(path: &Path, groups: &[String], out: &mut Loaded) -> Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => parse_file(path, groups, out, 0),
        Ok(_) => Err(Error::Invalid(format!(
            "could not open required defaults file {}: not a file",
            path.display()
        ))),
        Err(e) => Err(Error::Invalid(format!(
            "could not open required defaults file {}: {e}",
            path.display()
        ))),
    }
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// Parses option-file text (for tests and for load): groups, keys, values, with
/// !include/!includedir resolved relative to nothing (absolute or as written), reading
/// included files from disk. `depth` is the include nesting (0 for a top-level file).
pub fn parse_file(path: &Path, groups: &[String], out: &mut Loaded, depth: usize) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if ignored_as_world_writable(path, &meta) {
        // The clients' own words, so that users find the usual advice for it.
        let warning = format!("World-writable config file '{}' is ignored", path.display());
        out.warnings.push(warning);
        return Ok(());
    }
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = decode_utf8(path, bytes)?;
    out.files.push(path.to_path_buf());
    let first = out.settings.len();
    parse_text(&text, path, groups, out, depth)?;
    warn_if_password_readable(path, &meta, first, out);
    Ok(())
}

/// The file's text; an invalid byte is reported with its line rather than replaced, since
/// replacing it could silently change a password.
fn decode_utf8(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Error::Invalid(format!("{} line {line}: not valid UTF-8", path.display()))
    })
}

/// Parses the lines of one file's text into `out`.
fn parse_text(
    text: &str,
    path: &Path,
    groups: &[String],
    out: &mut Loaded,
    depth: usize,
) -> Result<()> {
    let mut reader = Reader {
        path,
        groups,
        depth,
        group: None,
        line: 0,
    };
    for line in text.lines() {
        reader.line += 1;
        reader.handle(line.trim(), out)?;
    }
    Ok(())
}

/// The state of parsing one file: where we are, and in which group.
struct Reader<'a> {
    path: &'a Path,
    groups: &'a [String],
    depth: usize,
    group: Option<String>,
    line: usize,
}

impl Reader<'_> {
    /// An error at the current line; `msg` never quotes the line, which may hold a password.
    fn error(&self, msg: &str) -> Error {
        Error::Invalid(format!("{} line {}: {msg}", self.path.display(), self.line))
    }

    fn handle(&mut self, line: &str, out: &mut Loaded) -> Result<()> {
        match line.chars().next() {
            None | Some('#') | Some(';') => Ok(()),
            Some('!') => self.directive(&line[1..], out),
            Some('[') => self.header(&line[1..]),
            Some(_) => self.option(line, out),
        }
    }

    /// `[group]`: everything up to the first `]`, trimmed; text after it is ignored, as by
    /// the clients.
    fn header(&mut self, rest: &str) -> Result<()> {
        let end = rest
            .find(']')
            .ok_or_else(|| self.error("malformed group header (no closing ']')"))?;
        self.group = Some(rest[..end].trim().to_lowercase());
        Ok(())
    }

    /// `!include FILE` and `!includedir DIR`. The clients ignore other directives silently;
    /// we warn, since a misspelt `!include` would otherwise lose options unnoticed. Past the
    /// depth limit the directive is skipped with a warning, as the clients do.
    fn directive(&mut self, rest: &str, out: &mut Loaded) -> Result<()> {
        let rest = rest.trim_start();
        let (word, arg) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, ""), |(w, a)| (w, a.trim()));
        if word != "include" && word != "includedir" {
            let warning = format!(
                "{} line {}: unknown directive '!{word}' ignored",
                self.path.display(),
                self.line
            );
            out.warnings.push(warning);
            return Ok(());
        }
        if arg.is_empty() {
            return Err(self.error(&format!("'!{word}' without a path")));
        }
        if self.depth >= MAX_INCLUDE_DEPTH {
            out.warnings.push(format!(
                "{} line {}: '!{word}' nested more than {MAX_INCLUDE_DEPTH} levels deep, skipped",
                self.path.display(),
                self.line
            ));
            return Ok(());
        }
        match word {
            "include" => self.include(Path::new(arg), out),
            _ => self.include_dir(Path::new(arg), out),
        }
    }

    /// Reads the included file here. A missing one is skipped, as the clients skip it.
    fn include(&self, file: &Path, out: &mut Loaded) -> Result<()> {
        match fs::metadata(file) {
            Err(e) if is_missing(&e) => Ok(()),
            _ => parse_file(file, self.groups, out, self.depth + 1),
        }
    }

    /// Reads every `*.cnf` file of the directory in name order (MariaDB sorts them; the
    /// order decides which value wins). A directory that cannot be read stops the run, as
    /// it stops the clients.
    fn include_dir(&self, dir: &Path, out: &mut Loaded) -> Result<()> {
        let entries = fs::read_dir(dir)
            .map_err(|e| self.error(&format!("cannot read directory {}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "cnf") && p.is_file())
            .collect();
        files.sort();
        for file in files {
            parse_file(&file, self.groups, out, self.depth + 1)?;
        }
        Ok(())
    }

    /// `key`, `key=value`: kept when the current group is wanted.
    fn option(&mut self, line: &str, out: &mut Loaded) -> Result<()> {
        let Some(group) = &self.group else {
            return Err(self.error("option outside of a group"));
        };
        // Lines of other groups may be meant for other parsers (a tool's own group read by
        // another library), so only the clients' own errors apply to them.
        if !in_groups(self.groups, group) {
            return Ok(());
        }
        let body = strip_comment(line);
        let (key, value) = match body.split_once('=') {
            Some((k, v)) => (k.trim(), Some(parse_value(v.trim()))),
            None => (body.trim(), None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(self.error("malformed line"));
        }
        let (key, loose) = split_loose(normalize_key(key));
        out.settings.push(Setting {
            key,
            value,
            loose,
            group: group.clone(),
            file: self.path.to_path_buf(),
            line: self.line,
        });
        Ok(())
    }
}

/// The line up to an unquoted `#`. As in the clients, a quote opens a string wherever it is,
/// and a backslash protects a quote only inside a string.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if (c == '\'' || c == '"') && !escaped {
            match quote {
                None => quote = Some(c),
                Some(q) if q == c => quote = None,
                Some(_) => {}
            }
        }
        if quote.is_none() && c == '#' {
            return &line[..i];
        }
        escaped = quote.is_some() && c == '\\' && !escaped;
    }
    line
}

/// A value with its surrounding quotes removed (when the first and last characters are the
/// same quote) and its escape sequences resolved.
fn parse_value(raw: &str) -> String {
    let b = raw.as_bytes();
    let quoted = b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0];
    let inner = if quoted { &raw[1..raw.len() - 1] } else { raw };
    unescape(inner)
}

/// Resolves `\b \t \n \r \\ \s \" \'`; an unknown escape and a final backslash stay as
/// written, as the clients keep them.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('\\'),
            Some(n) => match escaped_char(n) {
                Some(r) => out.push(r),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            },
        }
    }
    out
}

fn escaped_char(c: char) -> Option<char> {
    Some(match c {
        'b' => '\u{8}',
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        's' => ' ',
        '"' | '\'' | '\\' => c,
        _ => return None,
    })
}

/// Lower case with `_` written `-`: the clients treat `-` and `_` alike in option names.
fn normalize_key(key: &str) -> String {
    key.to_lowercase().replace('_', "-")
}

/// Splits off a `loose-` prefix (not when it is the whole key).
fn split_loose(key: String) -> (String, bool) {
    match key.strip_prefix("loose-") {
        Some(rest) if !rest.is_empty() => (rest.to_string(), true),
        _ => (key, false),
    }
}

fn in_groups(groups: &[String], group: &str) -> bool {
    groups.iter().any(|g| g.eq_ignore_ascii_case(group))
}

fn is_secret(key: &str) -> bool {
    SECRET_KEYS.contains(&key)
}

/// The permission bits of a file (0 where there are none).
#[cfg(unix)]
fn mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode(_meta: &fs::Metadata) -> u32 {
    0
}

/// The clients ignore a world-writable regular file, since anyone could have put options
/// in it, unless a read-only file system makes the bits meaningless.
fn ignored_as_world_writable(path: &Path, meta: &fs::Metadata) -> bool {
    meta.is_file() && mode(meta) & 0o002 != 0 && !write_refused_by_fs(path)
}

/// Whether writing is refused by the file system itself (read-only mount or immutable file),
/// which the clients check with access(2) before ignoring a world-writable file.
#[cfg(unix)]
fn write_refused_by_fs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c_path is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } == 0 {
        return false;
    }
    let errno = std::io::Error::last_os_error().raw_os_error();
    matches!(errno, Some(libc::EROFS) | Some(libc::EPERM))
}

#[cfg(not(unix))]
fn write_refused_by_fs(_path: &Path) -> bool {
    false
}

/// Warns when this file (not one it included) gave a password of a wanted group and other
/// users can read it. The value itself is never part of the warning.
fn warn_if_password_readable(path: &Path, meta: &fs::Metadata, first: usize, out: &mut Loaded) {
    let mode = mode(meta);
    let holds_password = out.settings[first..]
        .iter()
        .any(|s| s.file == path && is_secret(&s.key) && s.value.is_some());
    if holds_password && mode & 0o044 != 0 {
        let p = path.display();
        out.warnings.push(format!(
            "option file {p} holds a password and is readable by other users (mode {mode:04o}): chmod 600 {p}"
        ));
    }
}

/// Bytes before the key in `~/.mylogin.cnf`: reserved, unused by the clients.
const LOGIN_UNUSED: usize = 4;
/// Length of the key stored in `~/.mylogin.cnf`, folded into an AES-128 key.
const LOGIN_KEY: usize = 20;
const AES_BLOCK: usize = 16;

/// Reads `~/.mylogin.cnf` (mysql_config_editor's obfuscated login paths). A missing file is
/// skipped; one the client would refuse or cannot decode is skipped with a warning.
fn read_login_file(path: &Path, groups: &[String], out: &mut Loaded) -> Result<()> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return warn_login(out, path, &e.to_string()),
    };
    // The MySQL client refuses a login file that anyone but its owner may read or run.
    if mode(&meta) & 0o177 != 0 {
        let why = format!(
            "should be readable/writable only by current user (mode {:04o})",
            mode(&meta)
        );
        return warn_login(out, path, &why);
    }
    let text = match fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| decode_login(&b))
    {
        Ok(text) => text,
        Err(why) => return warn_login(out, path, &why),
    };
    out.files.push(path.to_path_buf());
    parse_text(&text, path, groups, out, 0)
}

fn warn_login(out: &mut Loaded, path: &Path, why: &str) -> Result<()> {
    out.warnings
        .push(format!("login path file {} ignored: {why}", path.display()));
    Ok(())
}

/// The option-file text of a `.mylogin.cnf`: 4 unused bytes, a 20-byte key, then records of
/// a little-endian u32 length and that many bytes of AES-128-ECB ciphertext (PKCS#7 padded),
/// each one line of text. Errors say what is wrong, never what was decrypted.
fn decode_login(bytes: &[u8]) -> std::result::Result<String, String> {
    let key_end = LOGIN_UNUSED + LOGIN_KEY;
    let key = bytes
        .get(LOGIN_UNUSED..key_end)
        .ok_or("shorter than its 24-byte header")?;
    let cipher = Aes128::new(&Array::from(fold_key(key)));
    let mut text = Vec::new();
    let mut rest = &bytes[key_end..];
    while !rest.is_empty() {
        let (record, tail) = next_record(rest)?;
        text.extend(decrypt_record(&cipher, record)?);
        // Each record is one line; make sure lines stay apart even if one lacks its newline.
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        rest = tail;
    }
    String::from_utf8(text).map_err(|_| "decoded text is not UTF-8".to_string())
}

/// The AES-128 key: the stored key's bytes XOR-ed into 16 bytes, as the clients derive it.
fn fold_key(stored: &[u8]) -> [u8; AES_BLOCK] {
    let mut key = [0u8; AES_BLOCK];
    for (i, b) in stored.iter().enumerate() {
        key[i % AES_BLOCK] ^= b;
    }
    key
}

/// Splits one length-prefixed record off the front of `bytes`.
fn next_record(bytes: &[u8]) -> std::result::Result<(&[u8], &[u8]), String> {
    let len: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("truncated record length")?;
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len % AES_BLOCK != 0 {
        return Err(format!("bad record length {len}"));
    }
    let end = 4usize.checked_add(len).ok_or("bad record length")?;
    let record = bytes.get(4..end).ok_or("truncated record")?;
    Ok((record, &bytes[end..]))
}

/// Decrypts one record (ECB: each block on its own) and removes its PKCS#7 padding.
fn decrypt_record(cipher: &Aes128, record: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut plain = Vec::with_capacity(record.len());
    for chunk in record.chunks_exact(AES_BLOCK) {
        let mut block = [0u8; AES_BLOCK];
        block.copy_from_slice(chunk);
        let mut block = Array::from(block);
        cipher.decrypt_block(&mut block);
        plain.extend_from_slice(&block);
    }
    unpad(plain)
}

fn unpad(mut plain: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    let n = plain.last().copied().unwrap_or(0) as usize;
    let valid = (1..=AES_BLOCK).contains(&n)
        && n <= plain.len()
        && plain[plain.len() - n..].iter().all(|&b| b as usize == n);
    if !valid {
        return Err("bad padding (damaged file or wrong key)".to_string());
    }
    plain.truncate(plain.len() - n);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockCipherEncrypt;
    use std::os::unix::fs::PermissionsExt;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn wanted() -> Vec<String> {
        groups(&Sources::default(), &no_env)
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes `text` to `dir/name` with mode 0600, so that no permission warning interferes.
    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        chmod(&path, 0o600);
        path
    }

    fn parse_in(dir: &Path, text: &str) -> Result<Loaded> {
        let path = write(dir, "my.cnf", text);
        let mut out = Loaded::default();
        parse_file(&path, &wanted(), &mut out, 0).map(|()| out)
    }

    fn parse(text: &str) -> Result<Loaded> {
        parse_in(tempfile::tempdir().unwrap().path(), text)
    }

    fn kv(key: &str, value: Option<&str>) -> (String, Option<String>) {
        (key.to_string(), value.map(str::to_string))
    }

    fn pairs(out: &Loaded) -> Vec<(String, Option<String>)> {
        let pair = |s: &Setting| (s.key.clone(), s.value.clone());
        out.settings.iter().map(pair).collect()
    }

    /// The value of the one setting of `[client]\n<line>`.
    fn value(line: &str) -> Option<String> {
        let out = parse(&format!("[client]\n{line}\n")).unwrap();
        assert_eq!(out.settings.len(), 1, "{line}");
        out.settings[0].value.clone()
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    // ----- syntax -----

    #[test]
    fn groups_keys_comments_and_blank_lines() {
        let text = "# comment\n; also a comment\n\n  [ CLIENT ]  \n  Host = db1  \n\
                    user_name=u\nCOMPRESS\n[mysqld]\nport=1\n[MySnap]\nthreads = 4\n";
        let out = parse(text).unwrap();
        let expected = vec![
            kv("host", Some("db1")),
            kv("user-name", Some("u")),
            kv("compress", None),
            kv("threads", Some("4")),
        ];
        assert_eq!(pairs(&out), expected);
        assert_eq!(
            (out.settings[0].group.as_str(), out.settings[0].line),
            ("client", 5)
        );
        assert_eq!(out.settings[3].group, "mysnap");
        assert!(!out.settings[0].loose);
        assert_eq!(out.files.len(), 1);
        assert!(out.warnings.is_empty());
    }

    #[test]
    fn crlf_line_endings_and_no_final_newline() {
        let out = parse("[client]\r\nhost = db1\r\nuser=u").unwrap();
        assert_eq!(
            pairs(&out),
            vec![kv("host", Some("db1")), kv("user", Some("u"))]
        );
    }

    #[test]
    fn inline_comments_and_quotes() {
        assert_eq!(value("host=db1 # prod"), Some("db1".into()));
        assert_eq!(value("host=db1# prod"), Some("db1".into()));
        assert_eq!(value("password=\"a#b\" # real comment"), Some("a#b".into()));
        assert_eq!(value("password='a#b'"), Some("a#b".into()));
        assert_eq!(value("x='it\"s'"), Some("it\"s".into()));
        assert_eq!(value("x=\"it's\""), Some("it's".into()));
        assert_eq!(value("x=\"a\\\"#b\""), Some("a\"#b".into()));
        assert_eq!(value("x = \"  spaced  \""), Some("  spaced  ".into()));
        assert_eq!(value("x=\"unterminated"), Some("\"unterminated".into()));
        assert_eq!(value("x=\"\""), Some(String::new()));
        assert_eq!(value("x="), Some(String::new()));
        assert_eq!(value("x = a = b"), Some("a = b".into()));
        assert_eq!(value("skip-ssl # no TLS"), None);
    }

    #[test]
    fn escape_sequences() {
        assert_eq!(
            value(r#"x=a\bb\tc\nd\re\\f\sg\"h\'i"#),
            Some("a\u{8}b\tc\nd\re\\f g\"h'i".into())
        );
        assert_eq!(value(r#"x="C:\\dir\sname""#), Some("C:\\dir name".into()));
        assert_eq!(value(r"x=a\xb"), Some(r"a\xb".into()));
        assert_eq!(value(r"x=trailing\"), Some(r"trailing\".into()));
        assert_eq!(value(r"x='q\'q'"), Some("q'q".into()));
    }

    #[test]
    fn other_groups_are_not_kept() {
        let out = parse("[mysqld]\nport=3307\n[mysqldump]\nquick\n[client]\nport=3306\n").unwrap();
        assert_eq!(pairs(&out), vec![kv("port", Some("3306"))]);
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = error("# top\n\nhost=db1\n");
        assert!(
            e.contains("my.cnf line 3: option outside of a group"),
            "{e}"
        );
        let e = error("[client]\nhost=a\n\n\n= value\n");
        assert!(e.contains("my.cnf line 5: malformed line"), "{e}");
        let e = error("[client]\nhost name = x\n");
        assert!(e.contains("line 2: malformed line"), "{e}");
        let e = error("[client]\n[mysqld\n");
        assert!(e.contains("line 2: malformed group header"), "{e}");
        // The clients' own errors apply to every group.
        let e = error("[mysqld]\nport=1\n[broken\n");
        assert!(e.contains("line 3: malformed group header"), "{e}");
    }

    #[test]
    fn lines_of_other_groups_may_use_other_syntax() {
        let out = parse("[myapp]\nsome key = value\n= x\n[client]\nuser=u\n").unwrap();
        assert_eq!(pairs(&out), vec![kv("user", Some("u"))]);
    }

    #[test]
    fn error_messages_never_quote_the_line() {
        let e = error("[client]\npass word = s3cret\n");
        assert!(!e.contains("s3cret"), "{e}");
        let e = error("password = s3cret\n");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my.cnf");
        fs::write(&path, b"[client]\npassword=\xe9t\xe9\n").unwrap();
        let e = parse_file(&path, &wanted(), &mut Loaded::default(), 0).unwrap_err();
        assert!(
            e.to_string().contains("my.cnf line 2: not valid UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn loose_prefix_is_flagged_and_removed() {
        let out = parse("[mysnap]\nloose-threads=4\nloose_new_option\nloose\n").unwrap();
        let got: Vec<_> = out
            .settings
            .iter()
            .map(|s| (s.key.as_str(), s.loose))
            .collect();
        assert_eq!(
            got,
            vec![("threads", true), ("new-option", true), ("loose", false)]
        );
    }

    #[test]
    fn boolean_prefixes_stay_in_the_key() {
        let out =
            parse("[client]\nskip-ssl\ndisable_compress\nenable-cleartext-plugin=1\n").unwrap();
        let keys: Vec<_> = out.settings.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            ["skip-ssl", "disable-compress", "enable-cleartext-plugin"]
        );
    }

    #[test]
    fn unknown_directive_is_a_warning() {
        let out = parse("!inclde /etc/x.cnf\n[client]\nuser=u\n").unwrap();
        assert_eq!(out.settings.len(), 1);
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].contains("line 1: unknown directive '!inclde'"));
    }

    // ----- includes -----

    #[test]
    fn include_reads_the_file_at_that_point() {
        let dir = tempfile::tempdir().unwrap();
        let inc = write(dir.path(), "inc.conf", "[client]\nuser=included\nport=1\n");
        let text = format!(
            "[client]\nuser=before\n!include {}\nport=2\n",
            inc.display()
        );
        let out = parse_in(dir.path(), &text).unwrap();
        let expected = vec![
            kv("user", Some("before")),
            kv("user", Some("included")),
            kv("port", Some("1")),
            kv("port", Some("2")),
        ];
        assert_eq!(pairs(&out), expected);
        assert_eq!(out.settings[1].file, inc);
        // The group of the including file goes on after the include.
        assert_eq!(out.settings[3].group, "client");
        assert_eq!(out.files.len(), 2);
        assert_eq!(out.files[1], inc);
    }

    #[test]
    fn a_missing_include_is_skipped_as_by_the_clients() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.cnf");
        let text = format!("[client]\n!include {}\nuser=u\n", missing.display());
        let out = parse_in(dir.path(), &text).unwrap();
        assert_eq!(pairs(&out), vec![kv("user", Some("u"))]);
        let e = parse_in(dir.path(), "!include   \n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: '!include' without a path"), "{e}");
    }

    #[test]
    fn includedir_reads_cnf_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf.d");
        fs::create_dir(&conf).unwrap();
        write(&conf, "b.cnf", "[client]\nuser=b\n");
        write(&conf, "a.cnf", "[client]\nuser=a\n");
        write(&conf, "c.cnf.bak", "[client]\nuser=bak\n");
        write(&conf, "d.ini", "[client]\nuser=ini\n");
        fs::create_dir(conf.join("e.cnf")).unwrap();
        let text = format!("!includedir {}\n[client]\nport=1\n", conf.display());
        let out = parse_in(dir.path(), &text).unwrap();
        let expected = vec![
            kv("user", Some("a")),
            kv("user", Some("b")),
            kv("port", Some("1")),
        ];
        assert_eq!(pairs(&out), expected);
    }

    #[test]
    fn a_missing_includedir_stops_the_run_as_it_stops_the_clients() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "!includedir {}/none\n[client]\nuser=u\n",
            dir.path().display()
        );
        let e = parse_in(dir.path(), &text).unwrap_err().to_string();
        assert!(e.contains("line 1: cannot read directory"), "{e}");
    }

    #[test]
    fn an_include_loop_is_cut_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loop.cnf");
        write(
            dir.path(),
            "loop.cnf",
            &format!("[client]\nuser=u\n!include {}\n", path.display()),
        );
        let mut out = Loaded::default();
        parse_file(&path, &wanted(), &mut out, 0).unwrap();
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains("nested more than 10 levels deep")),
            "{:?}",
            out.warnings
        );
    }

    // ----- permissions -----

    #[test]
    fn world_writable_file_is_ignored_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "my.cnf", "[client]\nuser=u\n");
        chmod(&path, 0o666);
        let mut out = Loaded::default();
        parse_file(&path, &wanted(), &mut out, 0).unwrap();
        assert!(out.settings.is_empty() && out.files.is_empty());
        let expected = format!("World-writable config file '{}' is ignored", path.display());
        assert_eq!(out.warnings, vec![expected]);
    }

    #[test]
    fn world_writable_included_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let inc = write(dir.path(), "inc.cnf", "[client]\nuser=evil\n");
        chmod(&inc, 0o602);
        let text = format!("[client]\nuser=u\n!include {}\n", inc.display());
        let out = parse_in(dir.path(), &text).unwrap();
        assert_eq!(pairs(&out), vec![kv("user", Some("u"))]);
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].starts_with("World-writable config file"));
    }

    #[test]
    fn readable_password_file_gets_a_warning_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "my.cnf", "[client]\npassword=s3cret\n");
        chmod(&path, 0o644);
        let mut out = Loaded::default();
        parse_file(&path, &wanted(), &mut out, 0).unwrap();
        let p = path.display();
        let expected = format!(
            "option file {p} holds a password and is readable by other users (mode 0644): chmod 600 {p}"
        );
        assert_eq!(out.warnings, vec![expected]);
        assert!(!out.warnings[0].contains("s3cret"));
    }

    #[test]
    fn no_password_warning_when_private_bare_or_unwanted() {
        let cases = [
            ("[client]\npassword=s3cret\n", 0o600),
            ("[client]\npassword\n", 0o644),
            ("[mysqld]\npassword=s3cret\n", 0o644),
            ("[client]\nuser=u\n", 0o644),
        ];
        for (text, mode) in cases {
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), "my.cnf", text);
            chmod(&path, mode);
            let mut out = Loaded::default();
            parse_file(&path, &wanted(), &mut out, 0).unwrap();
            assert!(
                out.warnings.is_empty(),
                "{text:?} {mode:o}: {:?}",
                out.warnings
            );
        }
    }

    // ----- get and print_defaults -----

    fn setting(key: &str, value: Option<&str>, group: &str, loose: bool) -> Setting {
        Setting {
            key: key.into(),
            value: value.map(str::to_string),
            loose,
            group: group.into(),
            file: PathBuf::from("/x.cnf"),
            line: 1,
        }
    }

    fn sample() -> Loaded {
        Loaded {
            settings: vec![
                setting("user", Some("a"), "client", false),
                setting("password", Some("p1"), "client", false),
                setting("host", Some("h"), "client", false),
                setting("user", Some("b"), "mysnap", false),
                setting("port", Some("1"), "other", false),
                setting("compress", None, "mysnap", false),
                setting("threads", Some("4"), "mysnap", true),
                setting("password", Some("p2"), "mysnap", false),
            ],
            ..Loaded::default()
        }
    }

    #[test]
    fn get_returns_the_last_value_of_the_groups() {
        let all = sample();
        let g = strings(&["client", "mysnap"]);
        assert_eq!(all.get(&g, "user").unwrap().value.as_deref(), Some("b"));
        assert_eq!(all.get(&g, "USER").unwrap().group, "mysnap");
        let client = strings(&["Client"]);
        assert_eq!(
            all.get(&client, "user").unwrap().value.as_deref(),
            Some("a")
        );
        assert!(all.get(&g, "port").is_none());
        assert!(all.get(&g, "threads").unwrap().loose);
    }

    #[test]
    fn print_defaults_last_value_first_seen_order_masked() {
        let g = strings(&["client", "mysnap"]);
        let printed = sample().print_defaults(&g);
        let expected = [
            "--user=b",
            "--password=*****",
            "--host=h",
            "--compress",
            "--loose-threads=4",
        ];
        assert_eq!(printed, expected);
        let bare = Loaded {
            settings: vec![setting("password", None, "client", false)],
            ..Loaded::default()
        };
        assert_eq!(bare.print_defaults(&g), ["--password"]);
    }

    // ----- groups -----

    #[test]
    fn groups_default_suffix_and_login_path() {
        let base = ["client", "client-server", "client-mariadb", "mysnap"];
        assert_eq!(groups(&Sources::default(), &no_env), base);
        let sources = Sources {
            group_suffix: Some("_Backup".into()),
            login_path: Some("Remote".into()),
            ..Sources::default()
        };
        let expected = [
            "client",
            "client-server",
            "client-mariadb",
            "mysnap",
            "client_backup",
            "client-server_backup",
            "client-mariadb_backup",
            "mysnap_backup",
            "remote",
        ];
        assert_eq!(groups(&sources, &no_env), expected);
    }

    #[test]
    fn group_suffix_from_env_unless_given() {
        let env = |k: &str| (k == "MYSQL_GROUP_SUFFIX").then(|| "_x".to_string());
        let got = groups(&Sources::default(), &env);
        assert_eq!(got.len(), 8);
        assert_eq!(got[4], "client_x");
        let sources = Sources {
            group_suffix: Some("_y".into()),
            ..Sources::default()
        };
        assert_eq!(groups(&sources, &env)[7], "mysnap_y");
        let login_client = Sources {
            login_path: Some("client".into()),
            ..Sources::default()
        };
        assert_eq!(groups(&login_client, &no_env).len(), 4);
    }

    // ----- file order -----

    /// A home directory and three "system" files in a temporary directory.
    struct Fixture {
        dir: tempfile::TempDir,
        system: Vec<PathBuf>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().join("home");
            fs::create_dir(&home).unwrap();
            let system = ["etc-my.cnf", "etc-mysql-my.cnf", "mariadb-home-my.cnf"]
                .iter()
                .map(|name| dir.path().join(name))
                .collect();
            Fixture { dir, system }
        }

        fn home(&self) -> PathBuf {
            self.dir.path().join("home")
        }

        fn login(&self) -> PathBuf {
            self.home().join(".mylogin.cnf")
        }

        /// Writes every file, each setting `user` to its own name.
        fn write_all(&self) {
            for (i, path) in self.system.iter().enumerate() {
                fs::write(path, format!("[client]\nuser=system{i}\n")).unwrap();
                chmod(path, 0o600);
            }
            write(self.dir.path(), "extra.cnf", "[client]\nuser=extra\n");
            write(self.dir.path(), "only.cnf", "[client]\nuser=only\n");
            write(&self.home(), ".my.cnf", "[client]\nuser=home\n");
            write_login(&self.login(), "[client]\nuser=login\n");
        }

        fn load(&self, sources: &Sources) -> Result<Loaded> {
            let home = self.home();
            let login = self.login();
            load_from(sources, &no_env, &self.system, Some(&home), Some(&login))
        }

        fn users(&self, sources: &Sources) -> Vec<String> {
            let out = self.load(sources).unwrap();
            out.settings
                .iter()
                .filter_map(|s| s.value.clone())
                .collect()
        }
    }

    #[test]
    fn files_are_read_in_the_clients_order() {
        let fx = Fixture::new();
        fx.write_all();
        let sources = Sources {
            defaults_extra_file: Some(fx.dir.path().join("extra.cnf")),
            ..Sources::default()
        };
        let expected = ["system0", "system1", "system2", "extra", "home", "login"];
        assert_eq!(fx.users(&sources), expected);
        let out = fx.load(&sources).unwrap();
        assert_eq!(out.files.len(), 6);
        assert_eq!(
            out.get(&wanted(), "user").unwrap().value.as_deref(),
            Some("login")
        );
        let without_extra = ["system0", "system1", "system2", "home", "login"];
        assert_eq!(fx.users(&Sources::default()), without_extra);
    }

    #[test]
    fn missing_files_are_skipped() {
        let fx = Fixture::new();
        write(&fx.home(), ".my.cnf", "[client]\nuser=home\n");
        let out = fx.load(&Sources::default()).unwrap();
        assert_eq!(out.files, vec![fx.home().join(".my.cnf")]);
        assert!(out.warnings.is_empty());
    }

    #[test]
    fn defaults_file_replaces_all_but_the_login_file() {
        let fx = Fixture::new();
        fx.write_all();
        let sources = Sources {
            defaults_file: Some(fx.dir.path().join("only.cnf")),
            defaults_extra_file: Some(fx.dir.path().join("extra.cnf")),
            ..Sources::default()
        };
        assert_eq!(fx.users(&sources), ["only", "login"]);
    }

    #[test]
    fn named_files_must_exist() {
        let fx = Fixture::new();
        let missing = fx.dir.path().join("missing.cnf");
        for sources in [
            Sources {
                defaults_file: Some(missing.clone()),
                ..Sources::default()
            },
            Sources {
                defaults_extra_file: Some(missing.clone()),
                ..Sources::default()
            },
        ] {
            let e = fx.load(&sources).unwrap_err().to_string();
            assert!(e.contains("could not open required defaults file"), "{e}");
            assert!(e.contains("missing.cnf"), "{e}");
        }
    }

    #[test]
    fn no_defaults_reads_nothing() {
        let fx = Fixture::new();
        fx.write_all();
        let sources = Sources {
            no_defaults: true,
            defaults_file: Some(fx.dir.path().join("only.cnf")),
            ..Sources::default()
        };
        let out = fx.load(&sources).unwrap();
        assert!(out.settings.is_empty() && out.files.is_empty());
    }

    #[test]
    fn syntax_error_in_a_system_file_is_an_error() {
        let fx = Fixture::new();
        fs::write(&fx.system[1], "user=u\n").unwrap();
        let e = fx.load(&Sources::default()).unwrap_err().to_string();
        assert!(
            e.contains("etc-mysql-my.cnf line 1: option outside of a group"),
            "{e}"
        );
    }

    #[test]
    fn system_files_follow_mariadb_home_then_mysql_home() {
        let both = |k: &str| match k {
            "MARIADB_HOME" => Some("/m".to_string()),
            "MYSQL_HOME" => Some("/y".to_string()),
            _ => None,
        };
        let mysql_only = |k: &str| (k == "MYSQL_HOME").then(|| "/y".to_string());
        let expected = |dir: &str| {
            let list = ["/etc/my.cnf", "/etc/mysql/my.cnf", dir];
            list.iter().map(PathBuf::from).collect::<Vec<_>>()
        };
        assert_eq!(system_files(&both), expected("/m/my.cnf"));
        assert_eq!(system_files(&mysql_only), expected("/y/my.cnf"));
        assert_eq!(system_files(&no_env).len(), 2);
    }

    #[test]
    fn login_path_group_is_read_from_the_login_file_only() {
        let fx = Fixture::new();
        write(&fx.home(), ".my.cnf", "[remote]\nhost=from-my-cnf\n");
        write_login(
            &fx.login(),
            "[client]\nuser=u\n[remote]\nhost=h\n[other]\nhost=o\n",
        );
        let sources = Sources {
            login_path: Some("remote".into()),
            ..Sources::default()
        };
        let out = fx.load(&sources).unwrap();
        assert_eq!(
            pairs(&out),
            vec![kv("user", Some("u")), kv("host", Some("h"))]
        );
        let all = groups(&sources, &no_env);
        assert_eq!(out.get(&all, "host").unwrap().group, "remote");
    }

    #[test]
    fn load_with_no_defaults_or_defaults_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        write(home, ".my.cnf", "[client]\nuser=home\n");
        write_login(&home.join(".mylogin.cnf"), "[client]\npassword=p\n");
        let no = Sources {
            no_defaults: true,
            ..Sources::default()
        };
        let out = load(&no, &no_env, Some(home)).unwrap();
        assert!(out.settings.is_empty() && out.files.is_empty());

        let only = write(home, "only.cnf", "[client]\nuser=only\n");
        let sources = Sources {
            defaults_file: Some(only.clone()),
            ..Sources::default()
        };
        let out = load(&sources, &no_env, Some(home)).unwrap();
        assert_eq!(out.files, vec![only, home.join(".mylogin.cnf")]);
        let expected = vec![kv("user", Some("only")), kv("password", Some("p"))];
        assert_eq!(pairs(&out), expected);

        let missing = Sources {
            defaults_file: Some(home.join("missing.cnf")),
            ..Sources::default()
        };
        let e = load(&missing, &no_env, Some(home)).unwrap_err().to_string();
        assert!(e.contains("missing.cnf"), "{e}");
    }

    #[test]
    fn login_file_location_can_be_overridden() {
        let env = |k: &str| (k == "MYSQL_TEST_LOGIN_FILE").then(|| "/t/login.cnf".to_string());
        let home = Path::new("/home/u");
        assert_eq!(
            login_file(&env, Some(home)),
            Some(PathBuf::from("/t/login.cnf"))
        );
        assert_eq!(
            login_file(&no_env, Some(home)),
            Some(home.join(".mylogin.cnf"))
        );
        assert_eq!(login_file(&no_env, None), None);
    }

    // ----- ~/.mylogin.cnf -----

    /// Encodes `text` as mysql_config_editor does: one encrypted record per line.
    fn encode_login(stored_key: [u8; 20], text: &str) -> Vec<u8> {
        let mut out = vec![0u8; 4];
        out.extend_from_slice(&stored_key);
        let cipher = Aes128::new(&Array::from(fold_key(&stored_key)));
        for line in text.split_inclusive('\n') {
            let mut plain = line.as_bytes().to_vec();
            let pad = AES_BLOCK - plain.len() % AES_BLOCK;
            plain.extend(std::iter::repeat_n(pad as u8, pad));
            for chunk in plain.chunks_exact_mut(AES_BLOCK) {
                let mut block = [0u8; AES_BLOCK];
                block.copy_from_slice(chunk);
                let mut block = Array::from(block);
                cipher.encrypt_block(&mut block);
                chunk.copy_from_slice(&block);
            }
            out.extend_from_slice(&(plain.len() as u32).to_le_bytes());
            out.extend_from_slice(&plain);
        }
        out
    }

    const KEY: [u8; 20] = [
        3, 17, 9, 28, 1, 0, 31, 7, 12, 5, 22, 14, 30, 2, 19, 8, 11, 25, 6, 4,
    ];

    fn write_login(path: &Path, text: &str) {
        fs::write(path, encode_login(KEY, text)).unwrap();
        chmod(path, 0o600);
    }

    fn read_login(bytes: &[u8], mode: u32) -> Loaded {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".mylogin.cnf");
        fs::write(&path, bytes).unwrap();
        chmod(&path, mode);
        let mut out = Loaded::default();
        let mut g = wanted();
        g.push("test".into());
        read_login_file(&path, &g, &mut out).unwrap();
        out
    }

    #[test]
    fn login_file_round_trip() {
        let text = "[client]\nuser = \"u\"\npassword = \"p w\\\"d\"\n[mysqld]\nuser = \"x\"\n";
        let bytes = encode_login(KEY, text);
        assert_eq!(decode_login(&bytes).unwrap(), text);
        let out = read_login(&bytes, 0o600);
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        let expected = vec![kv("user", Some("u")), kv("password", Some("p w\"d"))];
        assert_eq!(pairs(&out), expected);
        assert_eq!(out.settings[1].line, 3);
        assert_eq!(out.files.len(), 1);
    }

    #[test]
    fn missing_login_file_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Loaded::default();
        read_login_file(&dir.path().join("none"), &wanted(), &mut out).unwrap();
        assert!(out.warnings.is_empty() && out.files.is_empty());
    }

    #[test]
    fn damaged_login_files_give_a_warning() {
        let good = encode_login(KEY, "[client]\npassword = \"secret\"\n");
        let mut wrong_length = good.clone();
        wrong_length[24] = 15;
        let mut bad_padding = good.clone();
        bad_padding[30] ^= 0xff; // damages the first record's only block
        let mut huge_length = good.clone();
        huge_length[24..28].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        let cases: [(&[u8], &str); 5] = [
            (&good[..10], "shorter than its 24-byte header"),
            (&good[..good.len() - 1], "truncated record"),
            (&good[..26], "truncated record length"),
            (&wrong_length, "bad record length 15"),
            (&bad_padding, "bad padding"),
        ];
        for (bytes, why) in cases
            .into_iter()
            .chain([(&huge_length[..], "truncated record")])
        {
            let out = read_login(bytes, 0o600);
            assert!(out.settings.is_empty() && out.files.is_empty(), "{why}");
            assert_eq!(out.warnings.len(), 1, "{why}");
            assert!(out.warnings[0].contains(why), "{why}: {}", out.warnings[0]);
            assert!(out.warnings[0].contains(".mylogin.cnf ignored"));
            assert!(!out.warnings[0].contains("secret"));
        }
    }

    #[test]
    fn wrong_key_gives_a_warning() {
        let mut bytes = encode_login(KEY, "[client]\nuser = \"u\"\n");
        bytes[4] ^= 1;
        let out = read_login(&bytes, 0o600);
        assert!(out.settings.is_empty());
        assert_eq!(out.warnings.len(), 1);
    }

    #[test]
    fn login_file_readable_by_others_is_ignored() {
        let bytes = encode_login(KEY, "[client]\nuser = \"u\"\n");
        for mode in [0o644, 0o640, 0o700] {
            let out = read_login(&bytes, mode);
            assert!(out.settings.is_empty(), "{mode:o}");
            let w = &out.warnings[0];
            assert!(
                w.contains("should be readable/writable only by current user"),
                "{w}"
            );
        }
    }

    /// `test/test_quoted.mylogin.cnf` of PyMySQL/myloginpath (MIT), commit 2dc7b2d: a file
    /// written by mysql_config_editor for login path `test`.
    const MYLOGINPATH_QUOTED: [u8; 208] = [
        0x00, 0x00, 0x00, 0x00, 0x18, 0x0c, 0x1d, 0x1d, 0x07, 0x0e, 0x02, 0x12, 0x09, 0x02, 0x0f,
        0x1a, 0x12, 0x0f, 0x1c, 0x16, 0x1d, 0x18, 0x09, 0x01, 0x10, 0x00, 0x00, 0x00, 0x16, 0xf2,
        0x70, 0x2a, 0x0d, 0x10, 0xd8, 0x5d, 0xd9, 0xd2, 0x0e, 0xce, 0xa7, 0x2b, 0xb5, 0x8f, 0x20,
        0x00, 0x00, 0x00, 0xe7, 0xe7, 0xba, 0x54, 0x05, 0x70, 0xab, 0x1e, 0x35, 0x38, 0x43, 0x3a,
        0x84, 0xdf, 0xa1, 0x3b, 0x39, 0xe8, 0x65, 0xaf, 0xad, 0xf7, 0x50, 0x1e, 0xc9, 0x9b, 0x67,
        0x6b, 0xa3, 0x6c, 0x86, 0x07, 0x20, 0x00, 0x00, 0x00, 0x12, 0xd2, 0xff, 0x01, 0x5c, 0xc2,
        0xc8, 0x5b, 0x5f, 0x73, 0x0c, 0x32, 0x34, 0x4e, 0x06, 0xcd, 0x75, 0x0a, 0xf2, 0x38, 0x61,
        0xee, 0xe7, 0xd0, 0x9e, 0x55, 0x92, 0x00, 0xf6, 0xbd, 0xf4, 0x2b, 0x20, 0x00, 0x00, 0x00,
        0x82, 0x36, 0x87, 0xd7, 0x9e, 0x3c, 0xa8, 0x43, 0x15, 0xea, 0xeb, 0x12, 0xbe, 0x65, 0xfb,
        0x28, 0x39, 0xe8, 0x65, 0xaf, 0xad, 0xf7, 0x50, 0x1e, 0xc9, 0x9b, 0x67, 0x6b, 0xa3, 0x6c,
        0x86, 0x07, 0x20, 0x00, 0x00, 0x00, 0x48, 0x44, 0x61, 0x4f, 0x2b, 0x00, 0x54, 0x3d, 0x07,
        0x64, 0x54, 0xb9, 0xd9, 0xba, 0xab, 0x77, 0xae, 0x23, 0x06, 0x6a, 0x31, 0xa4, 0x89, 0x5d,
        0xe1, 0xb6, 0xb4, 0x80, 0x7a, 0xd4, 0x46, 0x85, 0x10, 0x00, 0x00, 0x00, 0x1b, 0xca, 0xcf,
        0x35, 0xf8, 0x5e, 0x63, 0x77, 0xe5, 0x59, 0xf1, 0x67, 0x6c, 0x10, 0x89, 0x57,
    ];

    /// `test/test_special.mylogin.cnf` of PyMySQL/myloginpath (MIT), commit 2dc7b2d: a host
    /// holding an escaped double quote.
    const MYLOGINPATH_SPECIAL: [u8; 80] = [
        0x00, 0x00, 0x00, 0x00, 0x02, 0x17, 0x1a, 0x04, 0x09, 0x1e, 0x05, 0x14, 0x10, 0x0f, 0x0d,
        0x09, 0x13, 0x00, 0x0e, 0x11, 0x1e, 0x0f, 0x0d, 0x10, 0x10, 0x00, 0x00, 0x00, 0xa4, 0x03,
        0xde, 0x9d, 0x0c, 0x42, 0x38, 0x48, 0x61, 0xc7, 0xca, 0x15, 0x9b, 0x8d, 0xe1, 0xac, 0x20,
        0x00, 0x00, 0x00, 0xf9, 0x73, 0x22, 0x32, 0x74, 0xbf, 0x35, 0x3c, 0xed, 0x2f, 0x92, 0x0d,
        0x60, 0xe8, 0x3e, 0x2c, 0xbf, 0x00, 0xb7, 0xce, 0x63, 0xfa, 0xa8, 0x13, 0x18, 0x02, 0xa6,
        0x4d, 0x24, 0xe0, 0x5d, 0x01,
    ];

    #[test]
    fn real_login_files_from_mysql_config_editor() {
        let quoted = "[test]\nuser = \"testuser\"\npassword = \"testpass\"\nhost = \"testhost\"\n\
                      socket = \"testsocket\"\nport = 1234\n";
        assert_eq!(decode_login(&MYLOGINPATH_QUOTED).unwrap(), quoted);
        let out = read_login(&MYLOGINPATH_QUOTED, 0o600);
        let expected = vec![
            kv("user", Some("testuser")),
            kv("password", Some("testpass")),
            kv("host", Some("testhost")),
            kv("socket", Some("testsocket")),
            kv("port", Some("1234")),
        ];
        assert_eq!(pairs(&out), expected);
        assert!(out.settings.iter().all(|s| s.group == "test"));

        let special = "[test]\nhost = \"host with \\\" quote\"\n";
        assert_eq!(decode_login(&MYLOGINPATH_SPECIAL).unwrap(), special);
        let out = read_login(&MYLOGINPATH_SPECIAL, 0o600);
        assert_eq!(pairs(&out), vec![kv("host", Some("host with \" quote"))]);
    }
}
