//! Password policy (OWASP ASVS 5.0 V6): at least 8 characters, up to 128,
//! no composition rules, no truncation, and not one of the most common
//! passwords.

/// Shortest password accepted for a new password.
pub const MIN_CHARS: usize = 8;
/// Longest password accepted for a new password.
pub const MAX_CHARS: usize = 128;

/// The most common passwords of at least 8 characters (from public breach
/// frequency lists), compared case-insensitively.
const COMMON: &[&str] = &[
    "12345678",
    "123456789",
    "1234567890",
    "password",
    "password1",
    "password12",
    "password123",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "11111111",
    "00000000",
    "1qaz2wsx",
    "iloveyou",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "abc12345",
    "abcd1234",
    "admin123",
    "administrator",
    "letmein1",
    "trustno1",
    "starwars",
    "superman",
    "michelle",
    "jennifer",
    "computer",
    "whatever",
    "asdfghjkl",
    "zxcvbnm1",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "qazwsxedc",
    "987654321",
    "87654321",
    "12341234",
    "123123123",
    "11223344",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "changeme",
    "changeme1",
    "default1",
    "mustang1",
    "shadow12",
    "dragon12",
    "monkey12",
    "football1",
    "baseball1",
    "iloveyou1",
    "internet",
    "samsung1",
    "charlie1",
    "liverpool",
    "chocolate",
    "butterfly",
    "password!",
    "welcome!",
    "laboratory",
    "antevus1",
    "antevus123",
];

/// Checks a new password; the message is for the `password` field.
pub fn check(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err("Password must be at least 8 characters");
    }
    if chars > MAX_CHARS {
        return Err("Password must be at most 128 characters");
    }
    let lowered = password.to_lowercase();
    let single_character = lowered
        .chars()
        .next()
        .is_some_and(|first| lowered.chars().all(|c| c == first));
    if COMMON.contains(&lowered.as_str()) || single_character {
        return Err("Password is too common; choose another");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn policy() {
        assert!(check("correct horse battery staple").is_ok());
        assert!(check("ümlaut-pässwörd").is_ok());
        assert!(check("short").is_err());
        assert!(check("Password123").is_err());
        assert!(check("aaaaaaaaaaaa").is_err());
        assert!(check(&"x1".repeat(65)).is_err());
        assert!(check(&"x1".repeat(64)).is_ok());
    }
}
