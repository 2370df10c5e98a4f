//! The connection-name rule (BRIEF section 4): letters, digits, underscores and spaces; starts
//! with a letter or digit. Letters and digits may be any script's. At most 100 characters, and
//! no space at the end (it would be invisible in lists).

/// The longest name accepted.
pub const MAX_NAME_CHARS: usize = 100;

/// Checks a connection name; the error says what is wrong and what is allowed.
pub fn check_connection_name(name: &str) -> Result<(), String> {
    const RULE: &str =
        "use letters, digits, underscores and spaces, starting with a letter or digit";
    let Some(first) = name.chars().next() else {
        return Err(format!("the connection name is empty; {RULE}"));
    };
    if !first.is_alphanumeric() {
        return Err(format!(
            "connection name `{name}` starts with `{first}`; {RULE}"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == '_' || *c == ' '))
    {
        return Err(format!(
            "connection name `{name}` contains `{}`; {RULE}",
            bad.escape_default()
        ));
    }
    if name.ends_with(' ') {
        return Err(format!(
            "connection name `{name}` ends with a space; remove it"
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
}
