//! Removing credentials from text an upstream sent back (error messages echo keys, as OpenAI's
//! "Incorrect API key provided: sk-…" does) before a client, an event or a log line sees it.
//!
//! The text is read as runs of token characters (letters, digits, `-`, `_`, `.`, `*`); a run
//! that has the shape of a known credential, or follows the word `Bearer`/`Basic`, becomes
//! `[redacted]`. Shapes: OpenAI/Anthropic `sk-`/`sk_`, `key-`, Google `AIza…`, GitHub `ghp_`
//! `gho_` `ghu_` `ghs_` `ghr_` `github_pat_`, GitLab `glpat-`, Slack `xox[abprs]-`, AWS access
//! key ids `AKIA`/`ASIA` + 16, and JWTs (`eyJ…` with two dots).

const REDACTED: &str = "[redacted]";

/// Prefixes that mark a credential when at least a few characters follow them.
const PREFIXES: &[&str] = &[
    "sk-",
    "sk_",
    "key-",
    "AIza",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxa-",
    "xoxb-",
    "xoxp-",
    "xoxr-",
    "xoxs-",
];

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*')
}

fn looks_like_credential(run: &str) -> bool {
    let run = run.trim_end_matches('.');
    if PREFIXES
        .iter()
        .any(|prefix| run.len() > prefix.len() + 2 && run.starts_with(prefix))
    {
        return true;
    }
    let aws = (run.starts_with("AKIA") || run.starts_with("ASIA"))
        && run.len() == 20
        && run
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
    let jwt = run.starts_with("eyJ") && run.matches('.').count() == 2 && run.len() > 20;
    aws || jwt
}

/// `text` with every credential-shaped run replaced by `[redacted]`.
#[must_use]
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut after_scheme = false;
    while let Some(start) = rest.find(is_token_char) {
        out.push_str(&rest[..start]);
        let run_and_after = &rest[start..];
        let end = run_and_after
            .find(|c: char| !is_token_char(c))
            .unwrap_or(run_and_after.len());
        let run = &run_and_after[..end];
        if after_scheme || looks_like_credential(run) {
            out.push_str(REDACTED);
            // Keep a sentence's full stop.
            if run.ends_with('.') && !after_scheme {
                out.push('.');
            }
            after_scheme = false;
        } else {
            out.push_str(run);
            after_scheme = run.eq_ignore_ascii_case("bearer") || run.eq_ignore_ascii_case("basic");
        }
        rest = &run_and_after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_secrets;

    #[test]
    fn credential_shapes_are_redacted_and_prose_is_kept() {
        let cases: &[(&str, &str)] = &[
            (
                "Incorrect API key provided: sk-proj-abc********************1234. You can find it",
                "Incorrect API key provided: [redacted]. You can find it",
            ),
            (
                "invalid x-api-key sk-ant-api03-AbCd",
                "invalid x-api-key [redacted]",
            ),
            ("key sk_live_51Habcdef", "key [redacted]"),
            (
                "API key not valid: AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
                "API key not valid: [redacted]",
            ),
            (
                "token ghp_16C7e42F292c6912E7710c838347Ae178B4a",
                "token [redacted]",
            ),
            ("oauth gho_16C7e42F292c6912E7710c8383", "oauth [redacted]"),
            ("pat=github_pat_11ABCDEFG0abcdefghij", "pat=[redacted]"),
            ("aws AKIAIOSFODNN7EXAMPLE denied", "aws [redacted] denied"),
            ("slack xoxb-123456789012-abcdefABCDEF", "slack [redacted]"),
            ("slack xoxp-1-2-3-abc", "slack [redacted]"),
            (
                "Authorization: Bearer abc.def-ghi_jkl rejected",
                "Authorization: Bearer [redacted] rejected",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c expired",
                "jwt [redacted] expired",
            ),
            ("\"sk-abc123456\"", "\"[redacted]\""),
            // Not credentials: kept as they are.
            (
                "the model `gpt-4.1` does not exist",
                "the model `gpt-4.1` does not exist",
            ),
            (
                "rate limit: 10 requests per minute",
                "rate limit: 10 requests per minute",
            ),
            (
                "request req_0123456789abcdef failed",
                "request req_0123456789abcdef failed",
            ),
            ("AKIA is a prefix", "AKIA is a prefix"),
            ("ask-me anything, skip", "ask-me anything, skip"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(&redact_secrets(input), expected, "input: {input}");
        }
    }
}
