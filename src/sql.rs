//! Building SQL text: identifiers, literals and qualified names, quoted the way both
//! MySQL and MariaDB parse them whatever the session's sql_mode.

/// Quotes an identifier with backticks, doubling any backtick inside.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `db`.`name`, both quoted.
pub fn qualified(db: &str, name: &str) -> String {
    format!("{}.{}", ident(db), ident(name))
}

/// A string literal that survives any sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES): a hex
/// literal with the utf8mb4 introducer.
pub fn string(value: &str) -> String {
    if value.is_empty() {
        return "''".to_string();
    }
    format!("_utf8mb4 0x{}", hex::encode(value.as_bytes()))
}

/// A literal of raw bytes in a given character set and collation, compared the way the
/// column compares (used for key-range boundaries).
pub fn bytes_in_charset(value: &[u8], charset: &str, collation: Option<&str>) -> String {
    let literal = if value.is_empty() {
        format!("_{charset}''")
    } else {
        format!("_{charset} 0x{}", hex::encode(value))
    };
    match collation {
        Some(c) => format!("({literal} COLLATE {c})"),
        None => literal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_double_backticks() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(qualified("d b", "t.1"), "`d b`.`t.1`");
    }

    #[test]
    fn strings_are_hex_so_quotes_and_backslashes_cannot_escape() {
        assert_eq!(string("a'\\"), "_utf8mb4 0x61275c");
        assert_eq!(string(""), "''");
    }

    #[test]
    fn byte_literals_carry_charset_and_collation() {
        assert_eq!(
            bytes_in_charset(b"\x81\x5c", "gbk", Some("gbk_chinese_ci")),
            "(_gbk 0x815c COLLATE gbk_chinese_ci)"
        );
        assert_eq!(bytes_in_charset(b"", "binary", None), "_binary''");
    }
}
