//! A moto server that handles one request at a time, for tests of conditional-write races and the
//! fleet benchmark's state table.
//!
//! `moto_server` is threaded and moto checks a DynamoDB condition and applies the write without a lock,
//! so two concurrent conditional writes can both succeed there, which real DynamoDB never allows. This
//! server runs moto's own WSGI application with `threaded=False`: each request is atomic, as on AWS, and
//! the race between our clients' read–decide–write loops is still real. Do not long-poll SQS on it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// Binds a free port itself and prints it: a port picked here and handed over could be taken by any
/// other process in between (tests start moto servers all the time), and the server would exit with
/// "address already in use" or, worse, the test would talk to the other process's server.
const SERIAL_SERVER: &str = "
from werkzeug.serving import make_server
from moto.moto_server.threaded_moto_server import DomainDispatcherApplication, create_backend_app
server = make_server('127.0.0.1', 0, DomainDispatcherApplication(create_backend_app), threaded=False)
print(server.server_port, flush=True)
server.serve_forever()
";

/// A threaded moto whose DynamoDB writes run one at a time: a conditional write is atomic against
/// every other write (the lease's rule holds, as on DynamoDB), while reads run beside them as on the
/// plain threaded server. For the fleet benchmarks: on [`SERIAL_SERVER`] a small request waits for
/// a whole long one, and moto reads every item of the table for each query of an index (0.6-1 s at
/// 1,000 groups), which DynamoDB does not. Reads may see an item half-updated, which DynamoDB's
/// item-level atomicity forbids. A response is read whole inside the lock.
const WRITE_LOCKED_SERVER: &str = "
import threading
from werkzeug.serving import make_server
from moto.moto_server.threaded_moto_server import DomainDispatcherApplication, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
WRITES = {'PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems'}
def locked(environ, start_response):
    if environ.get('HTTP_X_AMZ_TARGET', '').rsplit('.', 1)[-1] in WRITES:
        with lock:
            return list(app(environ, start_response))
    return app(environ, start_response)
server = make_server('127.0.0.1', 0, locked, threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
";

/// A single-threaded moto (or one whose writes are, [`SerialMoto::start_write_locked`]), killed on
/// drop.
pub struct SerialMoto {
    child: Child,
    port: u16,
}

impl SerialMoto {
    /// # Panics
    /// When python3 with moto cannot start or the server does not answer within a minute.
    pub fn start() -> Self {
        Self::start_script(SERIAL_SERVER)
    }

    /// A threaded moto that applies DynamoDB writes one at a time (see [`WRITE_LOCKED_SERVER`]).
    ///
    /// # Panics
    /// As [`SerialMoto::start`].
    pub fn start_write_locked() -> Self {
        Self::start_script(WRITE_LOCKED_SERVER)
    }

    fn start_script(script: &str) -> Self {
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with moto installed (pip install \"moto[server]==5.2.1\")");
        let started = Instant::now();
        let port = match super::moto::lines_of(&mut child).recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line
                .trim()
                .parse::<u16>()
                .expect("the port the serial moto server bound"),
            Err(e) => {
                let _ = child.kill();
                panic!("the serial moto server told no port ({e}): {:?}", child.wait());
            }
        };
        let mut server = Self { child, port };
        while !server.answers() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the serial moto server exited with {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the serial moto server did not answer within a minute"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn answers(&self) -> bool {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request =
            format!("GET /moto-api/data.json HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        let mut head = [0u8; 12];
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut head).is_ok()
            && &head[9..12] == b"200"
    }

    /// The server's process id (the benchmarks sample its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_<SERVICE>` of a child process.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration for this server (static test credentials, us-east-1).
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{}", self.port))
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "serial-moto"))
            .load()
            .await
    }
}

/// The clients of a serial moto and a fresh state table on it: what the replica tests share.
pub struct SerialState {
    pub ddb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
}

impl SerialMoto {
    /// Its DynamoDB, SNS and SQS clients, and a state table of a unique name created on it.
    pub async fn state(&self) -> SerialState {
        let config = self.sdk_config().await;
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        let table = super::moto::unique_name("state");
        personalize_ops::store::DynamoStore::create_table(&ddb, &table)
            .await
            .expect("table");
        SerialState {
            ddb,
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            table,
        }
    }
}

impl Drop for SerialMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
