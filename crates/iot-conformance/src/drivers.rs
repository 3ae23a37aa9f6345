//! The two drivers under test behind [`Driver`]: iot-blocking as it is, and iot-hyper through its public API
//! on a runtime of its own (`block_on`), so that the scenarios need no async code.

use futures_util::StreamExt;
use iot_model::{AppId, AppSecret};
use iot_proto::session::SessionState;
use iot_proto::{BaseUrl, Endpoint, Page, Paged};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET};

use crate::{Driver, ErrorView, Item, Settings};

fn credentials(base_url: &str) -> (BaseUrl, AppId, AppSecret) {
    (BaseUrl::parse(base_url).unwrap(), AppId::new(DEFAULT_APP_ID).unwrap(), AppSecret::new(DEFAULT_SECRET))
}

fn code(api: Option<&iot_proto::ApiError>) -> Option<(u16, String)> {
    api.map(|a| (a.status.as_u16(), a.code.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default()))
}

/// iot-blocking's client.
#[derive(Debug, Clone)]
pub struct Blocking(pub iot_blocking::Client);

impl ErrorView for iot_blocking::Error {
    fn api_code(&self) -> Option<(u16, String)> {
        code(self.api())
    }
    fn outcome_unknown(&self) -> bool {
        iot_blocking::Error::outcome_unknown(self)
    }
    fn is_retryable(&self) -> bool {
        iot_blocking::Error::is_retryable(self)
    }
    fn platform_may_have_acted(&self) -> bool {
        iot_blocking::Error::platform_may_have_acted(self)
    }
}

impl Driver for Blocking {
    type Error = iot_blocking::Error;

    fn connect(base_url: &str, settings: &Settings) -> Self {
        let (base, app, secret) = credentials(base_url);
        let config = iot_blocking::ClientConfig::new(base, app, secret)
            .with_retry(settings.retry)
            .with_call_timeout(settings.call_timeout)
            .with_rate_limit(settings.rate_limit);
        Self(iot_blocking::Client::new(config).unwrap())
    }

    fn send<E>(&self, request: &E) -> Result<E::Response, Self::Error>
    where
        E: Endpoint + Send + Sync + 'static,
        E::Response: Send,
    {
        self.0.send(request)
    }

    fn pages_with<E>(&self, request: E, after_page: &mut dyn FnMut(usize)) -> Vec<Result<E::Response, Self::Error>>
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
        Item<E>: Clone + PartialEq + Send,
    {
        let mut pages = Vec::new();
        for page in self.0.pages(request) {
            pages.push(page);
            after_page(pages.len());
        }
        pages
    }

    fn items<E>(&self, request: E) -> Vec<Result<Item<E>, Self::Error>>
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
        Item<E>: Clone + PartialEq + Send,
    {
        self.0.items(request).collect()
    }

    fn login(&self) -> Result<(), Self::Error> {
        self.0.login()
    }

    fn renew_token(&self) -> Result<(), Self::Error> {
        self.0.renew_token()
    }

    fn logout(&self) -> Result<(), Self::Error> {
        self.0.logout()
    }

    fn session_state(&self) -> SessionState {
        self.0.session_state()
    }
}

/// iot-hyper's client, each call run to completion on the driver's own single-threaded runtime.
#[derive(Debug)]
pub struct Hyper {
    runtime: tokio::runtime::Runtime,
    client: iot_hyper::Client,
}

impl ErrorView for iot_hyper::Error {
    fn api_code(&self) -> Option<(u16, String)> {
        code(self.api())
    }
    fn outcome_unknown(&self) -> bool {
        iot_hyper::Error::outcome_unknown(self)
    }
    fn is_retryable(&self) -> bool {
        iot_hyper::Error::is_retryable(self)
    }
    fn platform_may_have_acted(&self) -> bool {
        iot_hyper::Error::platform_may_have_acted(self)
    }
}

impl Driver for Hyper {
    type Error = iot_hyper::Error;

    fn connect(base_url: &str, settings: &Settings) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (base, app, secret) = credentials(base_url);
        // iot-hyper has no client-side rate limit in its public configuration; `settings.rate_limit` is moot.
        let config = iot_hyper::ClientConfig::new(base, app, secret)
            .with_retry(settings.retry)
            .with_call_timeout(settings.call_timeout);
        let client = {
            let _entered = runtime.enter();
            iot_hyper::Client::new(config).unwrap()
        };
        Self { runtime, client }
    }

    fn send<E>(&self, request: &E) -> Result<E::Response, Self::Error>
    where
        E: Endpoint + Send + Sync + 'static,
        E::Response: Send,
    {
        self.runtime.block_on(self.client.send(request))
    }

    fn pages_with<E>(&self, request: E, after_page: &mut dyn FnMut(usize)) -> Vec<Result<E::Response, Self::Error>>
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
        Item<E>: Clone + PartialEq + Send,
    {
        self.runtime.block_on(async {
            let mut stream = std::pin::pin!(self.client.pages(request));
            let mut pages = Vec::new();
            while let Some(page) = stream.next().await {
                pages.push(page);
                after_page(pages.len());
            }
            pages
        })
    }

    fn items<E>(&self, request: E) -> Vec<Result<Item<E>, Self::Error>>
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
        Item<E>: Clone + PartialEq + Send,
    {
        self.runtime.block_on(self.client.items(request).collect())
    }

    fn login(&self) -> Result<(), Self::Error> {
        self.runtime.block_on(self.client.login())
    }

    fn renew_token(&self) -> Result<(), Self::Error> {
        self.runtime.block_on(self.client.renew_token())
    }

    fn logout(&self) -> Result<(), Self::Error> {
        self.runtime.block_on(self.client.logout())
    }

    fn session_state(&self) -> SessionState {
        self.runtime.block_on(self.client.session_state())
    }
}
