//! TLS with a private CA, an HTTP CONNECT proxy, and Standard Webhooks signatures,
//! against real local servers.

mod support;

use base64::Engine as _;
use hmac::Mac;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::*;
use worklane_store::DeliveryStatus;

const T: Duration = Duration::from_secs(20);

#[tokio::test]
async fn https_with_a_private_ca_directly_and_through_a_connect_proxy() {
    let ca = test_ca();
    let rx = https_receiver(&ca).await;
    let px = proxy().await;
    let ca_file = ca.pem_path.display().to_string();
    let mut wl = Worklane::fresh().await;
    wl.notify(target(
        "direct",
        &rx.url,
        &format!("tls_ca_file = \"{ca_file}\"\n"),
    ));
    wl.notify(target(
        "proxied",
        &rx.url,
        &format!("tls_ca_file = \"{ca_file}\"\nhttp_proxy = \"{}\"\n", px.url),
    ));
    // Without the CA the receiver's certificate is not trusted.
    wl.notify(target(
        "untrusted",
        &rx.url,
        "http_retry_max_attempts = 0\n",
    ));
    wl.create("c").await;
    wait_for("direct", T, || wl.all_delivered("direct", 1)).await;
    wait_for("proxied", T, || wl.all_delivered("proxied", 1)).await;
    assert!(
        px.tunnels.load(Ordering::SeqCst) >= 1,
        "HTTPS went through a CONNECT tunnel"
    );
    assert_eq!(rx.count(), 2);
    wait_for("untrusted fails", T, || async {
        wl.deliveries("untrusted")
            .await
            .first()
            .is_some_and(|d| d.status == DeliveryStatus::Failed)
    })
    .await;
    let d = wl.deliveries("untrusted").await.remove(0);
    assert_eq!(d.last_status_code, None);
    assert!(
        d.last_error
            .as_deref()
            .unwrap_or("")
            .to_lowercase()
            .contains("certificate"),
        "{:?}",
        d.last_error
    );
    wl.stop().await;
}

#[tokio::test]
async fn plain_http_through_the_proxy() {
    let rx = http_receiver().await;
    let px = proxy().await;
    let mut wl = Worklane::fresh().await;
    wl.notify(target(
        "p",
        &rx.url,
        &format!("http_proxy = \"{}\"\n", px.url),
    ));
    wl.create("c").await;
    wait_for("delivered", T, || wl.all_delivered("p", 1)).await;
    assert!(px.forwarded.load(Ordering::SeqCst) >= 1);
    wl.stop().await;
}

#[tokio::test]
async fn requests_are_signed_with_every_secret() {
    let secrets = [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_c2Vjb25kLXNlY3JldC0xMjM0NTY3OA==",
    ];
    let rx = http_receiver().await;
    let mut wl = Worklane::fresh().await;
    wl.notify(target(
        "signed",
        &rx.url,
        &format!(
            "signing_secrets = [\"{}\", \"{}\"]\n",
            secrets[0], secrets[1]
        ),
    ));
    wl.create("c").await;
    wait_for("delivered", T, || wl.all_delivered("signed", 1)).await;
    let r = &rx.got()[0];
    let id = r.headers["webhook-id"].to_str().unwrap();
    assert_eq!(id, r.json["message_guid"].as_str().unwrap());
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let sigs: Vec<&str> = r.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(sigs.len(), 2);
    for (secret, sig) in secrets.iter().zip(sigs) {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&r.body);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sig, format!("v1,{expected}"));
    }
    wl.stop().await;
}
