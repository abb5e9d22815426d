//! Input checks shared by the resources. Each names the offending field.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// A display name: 1 to 200 characters, no control characters.
///
/// # Errors
/// 400 naming `field`.
pub fn name(field: &str, value: &str) -> Result<(), ApiError> {
    let length = value.trim().chars().count();
    if length == 0 || length > 200 || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must have 1 to 200 characters and no control characters"),
        ));
    }
    Ok(())
}

/// A referenced entity id.
///
/// # Errors
/// 400 naming `field`.
pub fn id(field: &str, value: &str) -> Result<(), ApiError> {
    if shared::ids::is_valid_entity_id(value) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} is not a valid id"),
        ))
    }
}

/// A provider base URL: http(s), a host, no credentials, no query or fragment.
///
/// # Errors
/// 400 naming `field`.
pub fn base_url(field: &str, value: &str) -> Result<reqwest::Url, ApiError> {
    let url = reqwest::Url::parse(value)
        .map_err(|error| ApiError::invalid(field, format!("{field} is not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be an http or https URL"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must name a host"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not carry credentials; add a provider key instead"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not have a query or fragment"),
        ));
    }
    Ok(url)
}

/// Header names that carry credentials: those belong in a provider key, encrypted.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "proxy-authorization",
    "cookie",
];

/// Extra upstream headers: valid names and values, no credentials.
///
/// # Errors
/// 400 naming `extra_headers.<name>`.
pub fn extra_headers(headers: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for (header_name, value) in headers {
        let field = format!("extra_headers.{header_name}");
        if reqwest::header::HeaderName::from_bytes(header_name.as_bytes()).is_err() {
            return Err(ApiError::invalid(field, "not a valid header name"));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(ApiError::invalid(field, "not a valid header value"));
        }
        if CREDENTIAL_HEADERS.contains(&header_name.to_ascii_lowercase().as_str()) {
            return Err(ApiError::invalid(
                field,
                "credentials do not belong in extra headers; add a provider key instead",
            ));
        }
    }
    Ok(())
}

/// A public model alias: 1 to 200 of letters, digits and `. _ : / @ -`.
///
/// # Errors
/// 400 naming `field`.
pub fn alias(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 200
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._:/@-".contains(&byte));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must have 1 to 200 characters among letters, digits and . _ : / @ -"),
        ))
    }
}

/// A model pattern: an alias where `*` matches any run of characters.
///
/// # Errors
/// 400 naming `field`.
pub fn pattern(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 200
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._:/@-*".contains(&byte));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be a model alias where * matches any run of characters"),
        ))
    }
}

/// A currency code: three upper-case letters.
///
/// # Errors
/// 400 naming `field`.
pub fn currency(field: &str, value: &str) -> Result<(), ApiError> {
    if value.len() == 3 && value.bytes().all(|byte| byte.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be a three-letter code such as USD"),
        ))
    }
}

/// A decimal amount as a string (or a JSON number) into nano-units.
///
/// # Errors
/// 400 naming `field`.
pub fn money(field: &str, value: &serde_json::Value) -> Result<shared::money::Nanos, ApiError> {
    let text = match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Number(number) => number.to_string(),
        _ => {
            return Err(ApiError::invalid(
                field,
                format!("{field} must be a decimal string such as \"2.5\""),
            ));
        }
    };
    shared::money::Nanos::parse_decimal(&text)
        .map_err(|error| ApiError::invalid(field, format!("{field}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_headers_and_patterns() {
        assert!(base_url("u", "https://api.openai.com/v1").is_ok());
        assert!(base_url("u", "ftp://x").is_err());
        assert!(base_url("u", "https://user:pw@x.com").is_err());
        let mut headers = BTreeMap::new();
        headers.insert("OpenAI-Organization".to_owned(), "org-1".to_owned());
        assert!(extra_headers(&headers).is_ok());
        headers.insert("Authorization".to_owned(), "Bearer x".to_owned());
        assert!(extra_headers(&headers).is_err());
        assert!(pattern("p", "gpt-4*").is_ok());
        assert!(pattern("p", "gpt 4").is_err());
        assert!(alias("a", "claude-sonnet-4@2025").is_ok());
        assert!(alias("a", "a*").is_err());
        assert_eq!(
            money("m", &serde_json::json!("2.5")).unwrap().0,
            2_500_000_000
        );
        assert_eq!(money("m", &serde_json::json!(3)).unwrap().0, 3_000_000_000);
        assert!(money("m", &serde_json::json!("-1")).is_err());
    }
}
