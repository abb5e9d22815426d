//! Single sign-on against a real (small) OpenID Connect provider run by the test: discovery,
//! the authorization endpoint, a token endpoint that checks the client's secret and the PKCE
//! verifier against the challenge (S256), and a JWKS with an ES256 and an RS256 key. The test
//! plays the browser: it follows each redirect by hand, as a browser would.
//!
//! It shows: an account created on first sign-in with its role and team from the groups claim;
//! the groups followed again at the next sign-in; the one-time code used once; a token with a
//! wrong nonce, audience or signature refused; a replayed state refused; a code injected into
//! another sign-in refused by the provider (PKCE); a disabled account refused, a deleted one
//! made again; and the local admin still signing in with a password (break-glass).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails loudly and reads top to bottom"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::KeyPair as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::common;
use common::Harness;
use kit::testing::{liveness, wait_until};

const CLIENT_ID: &str = "axongate-admin";
const CLIENT_SECRET: &str = "s3cret-of-the-client";

/// Who the provider signs in next (as if they had typed their password there), and how the
/// next ID token is made.
#[derive(Clone)]
struct Next {
    sub: String,
    username: String,
    groups: Vec<String>,
    alg: &'static str,
    wrong_nonce: bool,
    wrong_audience: bool,
    wrong_signature: bool,
}

struct Grant {
    challenge: String,
    nonce: String,
    redirect_uri: String,
    who: Next,
}

struct Provider {
    issuer: String,
    /// The client's registered callback (set once admin-api's address is known).
    redirect_uri: Mutex<String>,
    es256: ring::signature::EcdsaKeyPair,
    rs256: Option<ring::signature::RsaKeyPair>,
    next: Mutex<Option<Next>>,
    grants: Mutex<HashMap<String, Grant>>,
    /// What the token endpoint refused, and why.
    refusals: Mutex<Vec<String>>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random() -> String {
    let mut bytes = [0_u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    b64(&bytes)
}

/// An RSA key from `openssl` (ring signs with RSA but does not make keys), as PKCS#8 DER.
fn rsa_key() -> Option<ring::signature::RsaKeyPair> {
    let dir = tempfile_dir();
    let pem = dir.join("rsa.pem");
    let der = dir.join("rsa.der");
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem)
        .status()
        .is_ok_and(|status| status.success())
        && std::process::Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&der)
            .status()
            .is_ok_and(|status| status.success());
    let key = ok
        .then(|| std::fs::read(&der).ok())
        .flatten()
        .and_then(|bytes| ring::signature::RsaKeyPair::from_pkcs8(&bytes).ok());
    let _ = std::fs::remove_dir_all(&dir);
    key
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("axg-sso-{}", random()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Provider {
    fn jwks(&self) -> Value {
        let point = self.es256.public_key().as_ref();
        let mut keys = vec![
            json!({"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig",
            "alg": "ES256", "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
        ];
        if let Some(rsa) = &self.rs256 {
            let components: ring::rsa::PublicKeyComponents<Vec<u8>> = rsa.public().into();
            keys.push(
                json!({"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
                "n": b64(&components.n), "e": b64(&components.e)}),
            );
        }
        json!({"keys": keys})
    }

    fn id_token(&self, grant: &Grant) -> String {
        let who = &grant.who;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let kid = if who.alg == "RS256" { "rsa-1" } else { "ec-1" };
        let header = json!({"alg": who.alg, "typ": "JWT", "kid": kid});
        let claims = json!({
            "iss": self.issuer,
            "sub": who.sub,
            "aud": if who.wrong_audience { "someone-else" } else { CLIENT_ID },
            "iat": now, "exp": now + 300,
            "nonce": if who.wrong_nonce { "not-the-nonce" } else { grant.nonce.as_str() },
            "preferred_username": who.username, "name": format!("{} (SSO)", who.username),
            "groups": who.groups,
        });
        let message = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = ring::rand::SystemRandom::new();
        let mut signature = if who.alg == "RS256" {
            let rsa = self.rs256.as_ref().unwrap();
            let mut signature = vec![0; rsa.public().modulus_len()];
            rsa.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &rng,
                message.as_bytes(),
                &mut signature,
            )
            .unwrap();
            signature
        } else {
            self.es256
                .sign(&rng, message.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec()
        };
        if who.wrong_signature {
            signature[0] ^= 0xff;
        }
        format!("{message}.{}", b64(&signature))
    }
}

async fn discovery(State(provider): State<Arc<Provider>>) -> Response {
    let issuer = &provider.issuer;
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
    .into_response()
}

async fn authorize(
    State(provider): State<Arc<Provider>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let well_formed = param("response_type") == "code"
        && param("client_id") == CLIENT_ID
        && param("redirect_uri") == *provider.redirect_uri.lock().unwrap()
        && param("code_challenge_method") == "S256"
        && param("code_challenge").len() == 43
        && param("scope").split(' ').any(|scope| scope == "openid")
        && !param("state").is_empty()
        && !param("nonce").is_empty();
    if !well_formed {
        return (
            StatusCode::BAD_REQUEST,
            format!("bad authorization request {params:?}"),
        )
            .into_response();
    }
    let Some(who) = provider.next.lock().unwrap().clone() else {
        return (StatusCode::UNAUTHORIZED, "nobody is signing in").into_response();
    };
    let code = random();
    provider.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            challenge: param("code_challenge"),
            nonce: param("nonce"),
            redirect_uri: param("redirect_uri"),
            who,
        },
    );
    let location = format!(
        "{}?code={code}&state={}",
        param("redirect_uri"),
        url_encode(&param("state"))
    );
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn token(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let refuse = |why: &str| {
        provider.refusals.lock().unwrap().push(why.to_owned());
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        != Some(expected.as_str())
    {
        return refuse("client authentication failed");
    }
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    if field("grant_type") != "authorization_code" {
        return refuse("grant_type");
    }
    // A code is used once.
    let Some(grant) = provider.grants.lock().unwrap().remove(&field("code")) else {
        return refuse("unknown or used code");
    };
    if field("redirect_uri") != grant.redirect_uri {
        return refuse("redirect_uri differs");
    }
    if b64(&Sha256::digest(field("code_verifier").as_bytes())) != grant.challenge {
        return refuse("PKCE verifier does not match the challenge");
    }
    let id_token = provider.id_token(&grant);
    axum::Json(json!({"access_token": random(), "token_type": "Bearer",
        "expires_in": 300, "id_token": id_token}))
    .into_response()
}

async fn jwks(State(provider): State<Arc<Provider>>) -> Response {
    axum::Json(provider.jwks()).into_response()
}

/// Starts the provider on a free port.
async fn start_provider() -> Arc<Provider> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let provider = Arc::new(Provider {
        issuer,
        redirect_uri: Mutex::new(String::new()),
        es256: ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(),
        rs256: rsa_key(),
        next: Mutex::new(None),
        grants: Mutex::new(HashMap::new()),
        refusals: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/jwks", get(jwks))
        .with_state(provider.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    provider
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(kit::testing::liveness())
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 302, "a redirect");
    response.headers()[header::LOCATION.as_str()]
        .to_str()
        .unwrap()
        .to_owned()
}

/// What a sign-in ended with: the UI's `/login#…` fragment.
async fn browse_sign_in(harness: &Harness) -> String {
    let browser = no_redirects();
    let to_provider = location(
        &browser
            .get(format!("{}/api/v1/auth/oidc/login", harness.base))
            .send()
            .await
            .unwrap(),
    );
    let back = browser.get(&to_provider).send().await.unwrap();
    let callback = location(&back);
    assert!(
        callback.starts_with(&format!("{}/api/v1/auth/oidc/callback?", harness.base)),
        "{callback}"
    );
    let done = location(&browser.get(&callback).send().await.unwrap());
    done.strip_prefix("/login#")
        .unwrap_or_else(|| panic!("to the UI's login page: {done}"))
        .to_owned()
}

/// A finished sign-in's one-time code exchanged for a session.
async fn exchange(harness: &Harness, fragment: &str) -> (u16, Value) {
    let code = fragment
        .strip_prefix("sso=")
        .unwrap_or_else(|| panic!("a one-time code: {fragment}"));
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/oidc/session", harness.base))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn error_of(fragment: &str) -> String {
    let message = fragment
        .strip_prefix("sso_error=")
        .unwrap_or_else(|| panic!("an error: {fragment}"));
    url::form_urlencoded::parse(format!("m={message}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_an_openid_provider_maps_groups_to_roles_and_teams() {
    let provider = start_provider().await;
    let issuer = provider.issuer.clone();
    let harness = Harness::start_at(|config, base| {
        let callback = format!("{base}/api/v1/auth/oidc/callback");
        provider.redirect_uri.lock().unwrap().clone_from(&callback);
        config.oidc_issuer_url = Some(provider.issuer.clone());
        config.oidc_client_id = Some(CLIENT_ID.into());
        config.oidc_client_secret = Some(CLIENT_SECRET.into());
        config.oidc_redirect_url = Some(callback);
        config.oidc_group_roles = "gw-admins=admin,gw-ops=operator".into();
        config.oidc_group_teams = "eng=eng,eng-leads=eng:admin".into();
        config.oidc_default_role = "viewer".into();
    })
    .await;
    let admin = harness.admin().await;
    let sign_in_as = |who: Next| {
        *provider.next.lock().unwrap() = Some(who);
    };
    let ann = Next {
        sub: "00u-ann".into(),
        username: "ann".into(),
        groups: vec!["gw-ops".into(), "eng-leads".into(), "unrelated".into()],
        alg: "ES256",
        wrong_nonce: false,
        wrong_audience: false,
        wrong_signature: false,
    };

    // The login page learns that single sign-on is on.
    let (status, info) = harness
        .call(reqwest::Method::GET, "/api/v1/auth/oidc", None, None)
        .await;
    assert_eq!((status, &info["enabled"]), (200, &json!(true)), "{info}");
    let (status, body) = harness
        .post(
            "/api/v1/teams",
            &admin,
            json!({"id": "eng", "name": "Engineering", "members": []}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // 1. First sign-in: an account bound to the subject, operator by its group, team admin
    //    of Engineering by another.
    sign_in_as(ann.clone());
    let fragment = browse_sign_in(&harness).await;
    let (status, session) = exchange(&harness, &fragment).await;
    assert_eq!(status, 200, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    let (_, me) = harness.get("/api/v1/auth/me", &token).await;
    assert_eq!(me["username"], "ann");
    assert_eq!(me["role"], "operator", "{me}");
    assert_eq!(
        me["teams"],
        json!([{"id": "eng", "name": "Engineering", "role": "admin"}])
    );
    assert_eq!(me["must_change_password"], false);
    let (status, _) = harness.get("/api/v1/providers", &token).await;
    assert_eq!(status, 200, "the session works with the role it got");
    let (status, again) = exchange(&harness, &fragment).await;
    assert_eq!(status, 401, "a one-time code is used once: {again}");
    let (_, users) = harness.get("/api/v1/users?username=ann", &admin).await;
    let ann_id = users["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        users["items"][0]["sso_subject"],
        format!("{issuer}#00u-ann"),
        "{users}"
    );
    // An account of single sign-on has no password to sign in with.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", harness.base))
        .json(&json!({"username": "ann", "password": ""}))
        .send()
        .await
        .unwrap();
    assert!(
        response.status() == 401 || response.status() == 400,
        "{}",
        response.status()
    );

    // 2. The next sign-in follows the groups: now an admin, a plain member of Engineering;
    //    signed with the provider's RSA key this time, when openssl could make one.
    let rs256 = provider.rs256.is_some();
    let openssl = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success());
    assert_eq!(rs256, openssl, "an RSA key whenever openssl can make one");
    sign_in_as(Next {
        groups: vec!["gw-admins".into(), "eng".into()],
        alg: if rs256 { "RS256" } else { "ES256" },
        ..ann.clone()
    });
    let (status, session) = exchange(&harness, &browse_sign_in(&harness).await).await;
    assert_eq!(status, 200, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    let (_, me) = harness.get("/api/v1/auth/me", &token).await;
    assert_eq!(me["id"], ann_id.as_str(), "the same account");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["teams"][0]["role"], "member", "{me}");
    // Out of every mapped group: the default role, and out of the team.
    sign_in_as(Next {
        groups: vec![],
        ..ann.clone()
    });
    let (status, session) = exchange(&harness, &browse_sign_in(&harness).await).await;
    assert_eq!(status, 200, "{session}");
    let (_, me) = harness
        .get("/api/v1/auth/me", session["token"].as_str().unwrap())
        .await;
    assert_eq!(
        (&me["role"], &me["teams"]),
        (&json!("viewer"), &json!([])),
        "{me}"
    );

    // 3. A local account with the provider's username is never taken over: the provider's
    //    "admin" gets an account of its own.
    sign_in_as(Next {
        sub: "00u-imposter".into(),
        username: "admin".into(),
        groups: vec![],
        ..ann.clone()
    });
    let (status, session) = exchange(&harness, &browse_sign_in(&harness).await).await;
    assert_eq!(status, 200, "{session}");
    assert_ne!(session["user"]["id"], "admin");
    assert!(
        session["user"]["username"]
            .as_str()
            .unwrap()
            .starts_with("admin-"),
        "{session}"
    );
    assert_eq!(session["user"]["role"], "viewer");

    // 4. ID tokens that must not sign anyone in.
    for (what, who, expected) in [
        (
            "a wrong nonce",
            Next {
                wrong_nonce: true,
                ..ann.clone()
            },
            "nonce",
        ),
        (
            "another audience",
            Next {
                wrong_audience: true,
                ..ann.clone()
            },
            "another client",
        ),
        (
            "a bad signature",
            Next {
                wrong_signature: true,
                ..ann.clone()
            },
            "signature",
        ),
    ] {
        sign_in_as(who);
        let fragment = browse_sign_in(&harness).await;
        let message = error_of(&fragment);
        assert!(message.contains(expected), "{what}: {message}");
    }

    // 5. A state is used once: replaying the callback is refused, and the provider's code is
    //    not exchanged a second time.
    sign_in_as(ann.clone());
    let browser = no_redirects();
    let to_provider = location(
        &browser
            .get(format!("{}/api/v1/auth/oidc/login", harness.base))
            .send()
            .await
            .unwrap(),
    );
    let callback_url = location(&browser.get(&to_provider).send().await.unwrap());
    let first = location(&browser.get(&callback_url).send().await.unwrap());
    assert!(first.starts_with("/login#sso="), "{first}");
    let failures = async || {
        let (status, page) = harness
            .get("/api/v1/audit?type=login.failed&limit=200", &admin)
            .await;
        assert_eq!(status, 200, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row["after"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    // The failures audited so far are in the log (the three refused tokens above).
    let audited_before = wait_until(
        liveness(),
        "the refused tokens in the audit log",
        || async {
            let reasons = failures().await;
            (reasons
                .iter()
                .filter(|reason| *reason == "sso_invalid_token")
                .count()
                == 3)
                .then_some(reasons)
        },
    )
    .await;
    let replay = location(&browser.get(&callback_url).send().await.unwrap());
    assert!(
        error_of(replay.strip_prefix("/login#").unwrap()).contains("already used"),
        "{replay}"
    );
    // A callback naming no sign-in the gateway started (replayed, or forged by anyone) is
    // answered but costs the audit stream nothing.
    let forged = location(
        &browser
            .get(format!(
                "{}/api/v1/auth/oidc/callback?state=forged&error=access_denied",
                harness.base
            ))
            .send()
            .await
            .unwrap(),
    );
    assert!(
        error_of(forged.strip_prefix("/login#").unwrap()).contains("unknown"),
        "{forged}"
    );
    // A code injected into another sign-in (its own state, someone else's code): admin-api
    //    sends that sign-in's verifier, which is not the code's challenge, and the provider
    //    refuses it (PKCE).
    let start = async || {
        let to_provider = location(
            &browser
                .get(format!("{}/api/v1/auth/oidc/login", harness.base))
                .send()
                .await
                .unwrap(),
        );
        location(&browser.get(&to_provider).send().await.unwrap())
    };
    let (victim, attacker) = (start().await, start().await);
    let query = |url: &str, name: &str| {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(key, _)| key == name)
            .unwrap()
            .1
            .into_owned()
    };
    let injected = format!(
        "{}/api/v1/auth/oidc/callback?code={}&state={}",
        harness.base,
        url_encode(&query(&attacker, "code")),
        url_encode(&query(&victim, "state"))
    );
    let refused = location(&browser.get(&injected).send().await.unwrap());
    let message = error_of(refused.strip_prefix("/login#").unwrap());
    assert!(message.contains("refused the sign-in"), "{message}");
    assert_eq!(
        *provider.refusals.lock().unwrap(),
        ["PKCE verifier does not match the challenge"]
    );
    let audited = wait_until(
        liveness(),
        "the refused sign-in in the audit log",
        || async {
            let reasons = failures().await;
            (reasons.len() > audited_before.len()).then_some(reasons)
        },
    )
    .await;
    // The audit stream is in order: with the refused code's event in the log, the replayed
    // and forged callbacks before it would be too, had they been audited.
    assert_eq!(
        audited.len(),
        audited_before.len() + 1,
        "only the refused code was audited: {audited:?}"
    );
    assert!(
        audited.contains(&"sso_code_refused".to_owned()),
        "{audited:?}"
    );

    // 6. A disabled account is refused at the callback; the local admin still signs in with
    //    a password (break-glass).
    let (_, user) = harness
        .get(&format!("/api/v1/users/{ann_id}"), &admin)
        .await;
    let (status, body) = harness
        .patch(
            &format!("/api/v1/users/{ann_id}"),
            &admin,
            json!({"version": user["version"], "enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    sign_in_as(ann.clone());
    let message = error_of(&browse_sign_in(&harness).await);
    assert!(message.contains("disabled"), "{message}");
    let (status, _) = harness.get("/api/v1/auth/me", &token).await;
    assert_eq!(status, 401, "the disabled account's sessions are gone");
    // A deleted account (not a disabled one) is made again, with the same id, at the next
    // sign-in.
    let (status, _) = harness
        .delete(&format!("/api/v1/users/{ann_id}"), &admin)
        .await;
    assert_eq!(status, 204);
    sign_in_as(ann.clone());
    let (status, session) = exchange(&harness, &browse_sign_in(&harness).await).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["id"], ann_id.as_str());
    assert_eq!(session["user"]["role"], "operator");
    let local = harness.login("admin", common::ADMIN_PASSWORD).await;
    assert!(local["token"].is_string(), "{local}");
}
