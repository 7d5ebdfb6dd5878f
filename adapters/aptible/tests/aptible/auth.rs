//! Tokens: from the environment, from the token file keyed by the auth root, expired, and a
//! two-factor login (spec §1).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use exporter_aptible::{
    AuthClient, Client, Credentials, ErrorKind, ExposeSecret, SecretString, TokenSource,
    resolve_token, save_token,
};

use crate::support::{Fake, FakeOptions, fast_options};

fn lookup<'a>(map: &'a HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| map.get(k).cloned()
}

fn no_sshd() -> Fake {
    Fake::start_with(FakeOptions::backed(&[], false))
}

#[tokio::test(flavor = "multi_thread")]
async fn token_from_env_then_from_the_file_keyed_by_auth_root() {
    let fake = no_sshd();
    let config = tempfile::tempdir().unwrap();
    let env_token = fake.token().await;
    let file_token = fake.token().await;

    // The environment wins.
    let mut env = HashMap::from([
        ("APTIBLE_API_ROOT_URL", fake.api.clone()),
        ("APTIBLE_AUTH_ROOT_URL", fake.auth.clone()),
        ("APTIBLE_CONFIG_PATH", config.path().display().to_string()),
        ("APTIBLE_ACCESS_TOKEN", env_token.clone()),
    ]);
    let client = Client::from_lookup(&lookup(&env), fast_options()).unwrap();
    assert_eq!(client.accounts().await.unwrap().len(), 2);

    // Without it: the token file, under this auth root's key; other keys are kept.
    env.remove("APTIBLE_ACCESS_TOKEN");
    let path = config.path().join("tokens.json");
    std::fs::write(
        &path,
        "{\"https://auth.aptible.com\": \"someone-elses-token\"}\n",
    )
    .unwrap();
    let e = Client::from_lookup(&lookup(&env), fast_options()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.hint(), Some("run exporter login"));
    assert!(e.to_string().contains(&fake.auth), "{e}");
    save_token(&path, &fake.auth, &SecretString::from(file_token.clone())).unwrap();
    let resolved = resolve_token(&lookup(&env), &fake.roots()).unwrap();
    assert_eq!(resolved.source, TokenSource::File(path.clone()));
    assert_eq!(resolved.token.expose_secret(), file_token);
    let client = Client::from_lookup(&lookup(&env), fast_options()).unwrap();
    let handles: Vec<String> = client
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.handle)
        .collect();
    assert_eq!(handles, ["prod", "staging"]);
    let text = std::fs::read_to_string(&path).unwrap();
    let map: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(map["https://auth.aptible.com"], "someone-elses-token");
    assert_eq!(map[fake.auth.as_str()], file_token.as_str());
    assert!(text.ends_with('\n'));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    fake.assert_no_secret(&format!("{client:?} {resolved:?}"));
    fake.assert_clean_log(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_and_invalid_tokens_are_auth_errors_with_the_login_hint() {
    let fake = no_sshd();
    let expired = fake.token_expiring(-60).await;
    let client = Client::new(
        fake.roots(),
        SecretString::from(expired.clone()),
        fast_options(),
    )
    .unwrap();
    let e = client.environment("prod").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.slug(), Some("expired_token"));
    assert_eq!(e.to_string(), "GET /accounts: Expired Token");
    assert_eq!(e.hint(), Some("run exporter login"));
    assert!(!e.is_retryable());
    fake.assert_no_secret(&format!("{e} {e:?} {client:?}"));

    let bogus = Client::new(
        fake.roots(),
        SecretString::from("not-a-token".to_owned()),
        fast_options(),
    )
    .unwrap();
    let e = bogus.accounts().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.slug(), Some("invalid_token"));

    let auth = AuthClient::new(fake.roots(), &fast_options()).unwrap();
    let e = auth
        .current_token(&SecretString::from(expired))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    // One GET each, never retried (a 401 is not retryable).
    let log = fake.requests().await;
    assert_eq!(log.len(), 3, "{log:#?}");
    fake.assert_clean_log(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_factor_login_then_the_token_works_and_is_saved() {
    let fake = no_sshd();
    let auth = AuthClient::new(fake.roots(), &fast_options()).unwrap();
    let mut creds = Credentials {
        email: "twofa@example.com".into(),
        password: SecretString::from("twofa-Login-Pass-9043".to_owned()),
        otp_token: None,
        lifetime: None,
    };
    let e = auth.login(&creds).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OtpRequired);
    fake.assert_no_secret(&format!("{e} {e:?} {creds:?}"));

    creds.otp_token = Some(SecretString::from("000000".to_owned()));
    let e = auth.login(&creds).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Login);
    assert_eq!(e.to_string(), "POST /tokens: Invalid one-time password");

    creds.otp_token = Some(SecretString::from("424242".to_owned()));
    let issued = auth.login(&creds).await.unwrap();
    assert!(issued.expires_at.is_some());
    fake.assert_no_secret(&format!("{issued:?}"));
    assert!(!format!("{issued:?}").contains(issued.access_token.expose_secret()));

    // Saved and used as the CLI would.
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("tokens.json");
    save_token(&path, &fake.auth, &issued.access_token).unwrap();
    let env = HashMap::from([
        ("APTIBLE_API_ROOT_URL", fake.api.clone()),
        ("APTIBLE_AUTH_ROOT_URL", fake.auth.clone()),
        ("HOME", "/nonexistent".to_owned()),
        ("APTIBLE_CONFIG_PATH", config.path().display().to_string()),
    ]);
    let client = Client::from_lookup(&lookup(&env), fast_options()).unwrap();
    assert_eq!(client.environment("prod").await.unwrap().account.id, 42);
    assert!(
        auth.current_token(&issued.access_token)
            .await
            .unwrap()
            .is_some()
    );

    // A wrong password.
    let e = auth
        .login(&Credentials {
            email: "owner@example.com".into(),
            password: SecretString::from("wrong-password".to_owned()),
            otp_token: None,
            lifetime: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Login);
    assert!(!e.to_string().contains("wrong-password"));

    // The logins went out as JSON password grants with the CLI's lifetimes (12 h with a code).
    let log = fake.requests().await;
    let logins: Vec<&serde_json::Value> = log.iter().filter(|r| r["path"] == "/tokens").collect();
    assert_eq!(logins.len(), 4);
    for l in &logins {
        assert_eq!(l["server"], "auth");
        assert!(
            l["content_type"]
                .as_str()
                .unwrap()
                .starts_with("application/json")
        );
        let keys: Vec<&str> = l["body_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert!(keys.contains(&"grant_type") && keys.contains(&"expires_in"));
    }
    fake.assert_clean_log(0).await;
}
