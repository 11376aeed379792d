//! An MCP server (rmcp's Streamable HTTP transport on axum) with one tool, `count`, that
//! counts to `n` with a delay, sending a progress notification per step, then answers. Its
//! streams' events are stored through push-mcp: on Redis with `--redis URL` (so that several
//! processes serve one endpoint, and a client resumes or continues its session on any of
//! them), in memory otherwise.
//!
//! ```text
//! cargo run -p mcp-server -- --addr 127.0.0.1:8000 --redis redis://127.0.0.1:6379
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use push_core::Hub;
use push_mcp::{McpStore, PushSessionManager};
use push_redis::{RedisConfig, RedisHub};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Store events on this Redis (`redis://host:port`) instead of in memory.
    #[arg(long)]
    redis: Option<String>,
    /// The pause between two counts of the `count` tool, in milliseconds.
    #[arg(long, default_value_t = 100)]
    delay_ms: u64,
}

/// The tool server: one tool, `count`.
#[derive(Debug, Clone)]
struct Counter {
    delay: Duration,
}

impl ServerHandler for Counter {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = serde_json::json!({
            "type": "object",
            "properties": { "n": { "type": "integer", "minimum": 0, "maximum": 10000 } },
            "required": ["n"]
        });
        let serde_json::Value::Object(schema) = schema else {
            unreachable!("a JSON object literal")
        };
        let tool = Tool::new(
            "count",
            "Counts to n, one progress notification per step, then answers \"counted to n\"",
            Arc::new(schema),
        );
        Ok(ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != "count" {
            return Err(ErrorData::invalid_params("unknown tool", None));
        }
        let n = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("n"))
            .and_then(serde_json::Value::as_u64)
            .filter(|n| *n <= 10_000)
            .ok_or_else(|| ErrorData::invalid_params("`n` must be an integer 0..=10000", None))?;
        if let Some(token) = context.meta.get_progress_token() {
            for step in 1..=n {
                tokio::time::sleep(self.delay).await;
                let progress =
                    ProgressNotificationParam::new(token.clone(), step as f64).with_total(n as f64);
                // A peer gone away does not stop the count: its events are stored, and the
                // client resumes them.
                let _ = context.peer.notify_progress(progress).await;
            }
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("counted to {n}"))]).into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let hub = match &args.redis {
        Some(url) => Hub::new(RedisHub::connect(url, RedisConfig::default()).await?),
        None => Hub::memory(),
    };
    let store = McpStore::new(hub.clone());
    let mut config = StreamableHttpServerConfig::default();
    config.session_store = Some(Arc::new(store.clone()));
    let counter = Counter {
        delay: Duration::from_millis(args.delay_ms),
    };
    let service = StreamableHttpService::new(
        move || Ok(counter.clone()),
        Arc::new(PushSessionManager::new(store)),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!(
        "listening on http://{}/ (the MCP endpoint is /mcp)",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    hub.close();
    Ok(())
}
