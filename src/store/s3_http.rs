//! The S3 client's HTTP layer, wrapped to send `Content-MD5` with single-part puts.
//!
//! object_store has no option for the header, but passes a put's extensions on to the HTTP
//! request: [`S3Store`](super::S3Store) puts the MD5 of the body it holds there ([`ContentMd5`]),
//! and [`Md5Connector`] adds the header just before the request leaves (after signing: SigV4 does
//! not need to sign it). The server then checks the body against it (S3 answers `BadDigest` on a
//! mismatch), and a server that would otherwise compute the MD5 later — `rclone serve s3` does so
//! on the first listing — knows it from the put.

use base64::Engine;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};

/// The MD5 of a put's body, carried in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct ContentMd5(pub [u8; 16]);

/// object_store's own HTTP connector, with [`ContentMd5`] turned into a header.
#[derive(Debug, Default)]
pub struct Md5Connector;

impl HttpConnector for Md5Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Md5Service(inner)))
    }
}

#[derive(Debug)]
struct Md5Service(HttpClient);

#[async_trait::async_trait]
impl HttpService for Md5Service {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if let Some(ContentMd5(md5)) = req.extensions().get::<ContentMd5>().copied() {
            let value = base64::engine::general_purpose::STANDARD.encode(md5);
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                req.headers_mut()
                    .insert(http::HeaderName::from_static("content-md5"), value);
            }
        }
        self.0.execute(req).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Records the `Content-MD5` header of what it is asked to send, and fails the request.
    #[derive(Debug, Default)]
    struct Recorder(Arc<Mutex<Vec<Option<String>>>>);

    #[async_trait::async_trait]
    impl HttpService for Recorder {
        async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
            let header = req
                .headers()
                .get("content-md5")
                .map(|v| v.to_str().unwrap().to_owned());
            self.0.lock().unwrap().push(header);
            Err(HttpError::new(
                object_store::client::HttpErrorKind::Unknown,
                std::io::Error::other("recorded"),
            ))
        }
    }

    fn send(service: &Md5Service, md5: Option<[u8; 16]>) {
        let mut req =
            http::Request::new(object_store::client::HttpRequestBody::from(b"hi".to_vec()));
        if let Some(m) = md5 {
            req.extensions_mut().insert(ContentMd5(m));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(service.call(req)).is_err());
    }

    #[test]
    fn content_md5_is_sent_when_the_put_carries_it_and_only_then() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let service = Md5Service(HttpClient::new(Recorder(seen.clone())));
        // MD5("hi") = 49f68a5c8493ec2c0bf489821c21fc3b
        let md5: [u8; 16] = hex::decode("49f68a5c8493ec2c0bf489821c21fc3b")
            .unwrap()
            .try_into()
            .unwrap();
        send(&service, Some(md5));
        send(&service, None);
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].as_deref(), Some("SfaKXIST7CwL9ImCHCH8Ow=="));
        assert_eq!(seen[1], None);
    }
}
