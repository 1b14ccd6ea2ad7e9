//! Secrets on Secrets Manager (moto) and on local files, through the same cache.

use orrery::secrets::{SecretError, SecretString, Secrets};
use orrery_tests::Backend;

on_both_backends!(reads_writes_and_caches_secrets, missing_secrets_are_typed);

async fn reads_writes_and_caches_secrets(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let name = format!("orrery-test-{}", orrery_tests::unique_suffix());
    if backend.kind.is_aws() {
        let client = aws_sdk_secretsmanager::Client::new(backend.sdk.as_ref().unwrap());
        client
            .create_secret()
            .name(&name)
            .secret_string("initial")
            .send()
            .await
            .unwrap();
    }
    let secrets = &backend.app.secrets;
    secrets.put(&name, &SecretString::new("v1")).await.unwrap();
    assert_eq!(secrets.get(&name).await.unwrap().expose(), "v1");

    backend.put_secret_out_of_band(&name, "v2").await;
    assert_eq!(
        secrets.get(&name).await.unwrap().expose(),
        "v1",
        "served from the cache within its TTL"
    );
    secrets.invalidate(&name);
    assert_eq!(
        secrets.get(&name).await.unwrap().expose(),
        "v2",
        "fetched again once dropped from the cache"
    );
}

async fn missing_secrets_are_typed(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let name = format!("orrery-missing-{}", orrery_tests::unique_suffix());
    assert_eq!(
        backend.app.secrets.get(&name).await,
        Err(SecretError::NotFound(name.clone()))
    );
}
