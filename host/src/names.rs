//! The connection-name rule (BRIEF section 4): letters, digits, underscores and spaces; starts
//! with a letter or digit. Letters and digits may be any script's. At most 100 characters, and
//! no space at the end (it would be invisible in lists).

/// The longest name accepted.
pub const MAX_NAME_CHARS: usize = 100;

/// A name as messages quote it: control characters (a terminal escape sequence, a tab, a line
/// break) escaped (`\u{1b}`, `\t`, `\n`), so that a message shows what was typed and stays one
/// line; so are invisible and direction-changing characters (`\u{200b}`, `\u{202e}`), which
/// would make a message read otherwise than it was typed. Letters and digits of any script,
/// spaces and printable ASCII are kept.
pub fn shown(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() || !(c.is_alphanumeric() || c == ' ' || c.is_ascii_graphic()) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A connection name as a word of a command a message suggests: quoted when it holds a space
/// (the name rule allows nothing else a shell would split on), escaped like [`shown`].
pub fn shell_word(name: &str) -> String {
    if name.contains(' ') {
        format!("\"{}\"", shown(name))
    } else {
        shown(name)
    }
}

/// A name quoted for a message, as [`shown`] gives it; for `Display` inside `format!`.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shown(self.0))
    }
}

/// Checks a connection name; the error says what is wrong and what is allowed.
pub fn check_connection_name(name: &str) -> Result<(), String> {
    const RULE: &str =
        "use letters, digits, underscores and spaces, starting with a letter or digit";
    let Some(first) = name.chars().next() else {
        return Err(format!("the connection name is empty; {RULE}"));
    };
    let name_shown = shown(name);
    if !first.is_alphanumeric() {
        return Err(format!(
            "connection name `{name_shown}` starts with `{}`; {RULE}",
            first.escape_default()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == '_' || *c == ' '))
    {
        return Err(format!(
            "connection name `{name_shown}` contains `{}`; {RULE}",
            bad.escape_default()
        ));
    }
    if name.ends_with(' ') {
        return Err(format!(
            "connection name `{name_shown}` ends with a space; remove it"
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "connection name is longer than {MAX_NAME_CHARS} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: Result<(), &str>) {
        match (check_connection_name(name), expected) {
            (Ok(()), Ok(())) => {}
            (Err(message), Err(fragment)) => {
                assert!(message.contains(fragment), "{name:?}: {message}")
            }
            (got, want) => panic!("{name:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn connection_names() {
        check("Acme Prod", Ok(()));
        check("acme_prod_2", Ok(()));
        check("2024 sandbox", Ok(()));
        check("Société Générale", Ok(()));
        check("", Err("empty"));
        check(" Acme", Err("starts with ` `"));
        check("_acme", Err("starts with `_`"));
        check("acme-prod", Err("contains `-`"));
        check("acme/prod", Err("contains `/`"));
        check("acme\tprod", Err("contains `\\t`"));
        check("acme ", Err("ends with a space"));
        check(&"a".repeat(101), Err("longer than 100"));
        check(&"a".repeat(100), Ok(()));
    }

    #[test]
    fn names_in_messages_have_their_control_characters_escaped() {
        for (name, expected) in [
            (
                "\u{1b}[31mRED",
                "connection name `\\u{1b}[31mRED` starts with `\\u{1b}`",
            ),
            (
                "RED\u{1b}[0m",
                "connection name `RED\\u{1b}[0m` contains `\\u{1b}`",
            ),
            ("a\nb", "connection name `a\\nb` contains `\\n`"),
            ("a\u{7}b", "connection name `a\\u{7}b` contains `\\u{7}`"),
        ] {
            let message = check_connection_name(name).expect_err("refused");
            assert!(message.starts_with(expected), "{name:?}: {message}");
            assert!(!message.chars().any(char::is_control), "{message:?}");
        }
        assert_eq!(shown("Société Générale"), "Société Générale");
        assert_eq!(shown("acme\u{202e}dorp"), "acme\\u{202e}dorp");
        assert_eq!(shown("a\u{200b}b (x)"), "a\\u{200b}b (x)");
    }
}
