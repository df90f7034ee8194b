//! Why the viewer could not serve, [`UiError`], or draw a picture, [`PictureError`].

use std::{io, net::SocketAddr};

/// Why [`crate::serve`] stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address is beyond loopback and no token was given.
    #[error(
        "listening on {addr} (beyond this machine) needs --token: anyone who can reach the port could read every trace"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// The server failed while serving.
    #[error("the viewer's server failed: {0}")]
    Server(#[source] io::Error),
}

/// Why [`crate::png`] could not draw a picture.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// The text is not an SVG picture resvg can read.
    #[error(transparent)]
    Svg(#[from] resvg::usvg::Error),
    /// The picture is zero pixels wide or high.
    #[error("the picture has no area")]
    EmptyPicture,
    /// The pixels could not be encoded as PNG.
    #[error("cannot encode the picture as PNG: {0}")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
}
