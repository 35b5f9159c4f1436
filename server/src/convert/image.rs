//! Images: the image store's records as CRI `Image`s, pull credentials from CRI `AuthConfig`.

use crius_image_store::images::ImageRecord;
use crius_image_store::registry::Credentials;
use k8s_cri::v1 as cri;
use tonic::Status;

/// The CRI view of an image. `pinned` says whether image garbage collection must keep it.
pub fn image(record: &ImageRecord, pinned: bool) -> cri::Image {
    let (uid, username) = user(&record.user);
    cri::Image {
        id: record.id.to_string(),
        repo_tags: record.repo_tags.clone(),
        repo_digests: record.repo_digests.clone(),
        size: record.size,
        uid,
        username,
        spec: Some(cri::ImageSpec {
            image: record.id.to_string(),
            ..Default::default()
        }),
        pinned,
    }
}

/// The image config's `User` as CRI wants it: a numeric user as `uid`, a name as `username`
/// (`1002`, `www-data`, `1003:1004`, `www-data:1004`); the group part is not reported.
fn user(config_user: &str) -> (Option<cri::Int64Value>, String) {
    let user = config_user.split(':').next().unwrap_or("");
    match user.parse::<i64>() {
        Ok(value) => (Some(cri::Int64Value { value }), String::new()),
        Err(_) => (None, user.to_string()),
    }
}

/// Credentials of a pull request, if it carries any: a registry token, an identity token,
/// a username and password, or the base64 `auth` form, in that order.
pub fn credentials(auth: Option<&cri::AuthConfig>) -> Result<Option<Credentials>, Status> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    if !auth.registry_token.is_empty() {
        return Ok(Some(Credentials::RegistryToken(
            auth.registry_token.clone(),
        )));
    }
    if !auth.identity_token.is_empty() {
        return Ok(Some(Credentials::IdentityToken(
            auth.identity_token.clone(),
        )));
    }
    if !auth.username.is_empty() {
        return Ok(Some(Credentials::Basic {
            username: auth.username.clone(),
            password: auth.password.clone(),
        }));
    }
    if !auth.auth.is_empty() {
        return Credentials::from_auth_string(&auth.auth)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("auth: {e}")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_user_forms_map_to_uid_or_username() {
        let uid = |v| Some(cri::Int64Value { value: v });
        assert_eq!(user("1002"), (uid(1002), String::new()));
        assert_eq!(user("1003:1004"), (uid(1003), String::new()));
        assert_eq!(user("www-data"), (None, "www-data".to_string()));
        assert_eq!(user("www-data:1004"), (None, "www-data".to_string()));
        assert_eq!(user(""), (None, String::new()));
    }

    #[test]
    fn credentials_prefer_tokens_then_username_then_auth() {
        let auth = cri::AuthConfig {
            username: "u".into(),
            password: "p".into(),
            auth: "dXNlcjpwYXNz".into(),
            ..Default::default()
        };
        assert_eq!(
            credentials(Some(&auth)).unwrap(),
            Some(Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        let auth_only = cri::AuthConfig {
            auth: "dXNlcjpwYXNz".into(),
            ..Default::default()
        };
        assert_eq!(
            credentials(Some(&auth_only)).unwrap(),
            Some(Credentials::Basic {
                username: "user".into(),
                password: "pass".into()
            })
        );
        assert_eq!(credentials(None).unwrap(), None);
        assert_eq!(
            credentials(Some(&cri::AuthConfig::default())).unwrap(),
            None
        );
        let bad = cri::AuthConfig {
            auth: "***".into(),
            ..Default::default()
        };
        assert_eq!(
            credentials(Some(&bad)).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
