//! Talking to the daemon from the CLI, the TUI and tests: a blocking client over the
//! workspace's socket that starts the daemon when none is running.

use super::daemon::{socket_path, spawn_detached};
use super::job::{JobId, JobRecord, NewJob};
use super::protocol::{
    read_frame, write_frame, CatalogRequest, ClientFrame, Event, FrameError, Request, Response,
    ServerFrame, PROTOCOL_VERSION,
};
use crate::product::ProductFile;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no areo daemon is running for workspace {}", .0.display())]
    NotRunning(PathBuf),
    #[error("cannot start the daemon: {0}")]
    Start(String),
    #[error("talking to the daemon: {0}")]
    Frame(FrameError),
    #[error("the daemon sent something unreadable: {0}")]
    Protocol(String),
    #[error("the daemon closed the connection")]
    Closed,
    /// The daemon answered with an error.
    #[error("{0}")]
    Daemon(String),
}

impl From<FrameError> for ClientError {
    fn from(error: FrameError) -> Self {
        ClientError::Frame(error)
    }
}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> Self {
        ClientError::Frame(FrameError::Io(error))
    }
}

pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The read timeout the socket has now (changing it is a system call).
    timeout: Option<Duration>,
    next_id: u64,
    events: VecDeque<Event>,
    daemon_pid: u32,
}

impl Client {
    /// Connects to the running daemon of `workspace`.
    pub fn connect(workspace: &Path) -> Result<Self, ClientError> {
        let socket = socket_path(workspace);
        let stream = match UnixStream::connect(&socket) {
            Ok(stream) => stream,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::NotADirectory
                ) =>
            {
                return Err(ClientError::NotRunning(workspace.to_path_buf()))
            }
            Err(error) => return Err(error.into()),
        };
        let mut client = Client {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            timeout: None,
            next_id: 1,
            events: VecDeque::new(),
            daemon_pid: 0,
        };
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client: format!("areo {}", env!("CARGO_PKG_VERSION")),
        };
        match client.call(hello)? {
            Response::Welcome { pid, .. } => client.daemon_pid = pid,
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected a welcome, got {other:?}"
                )))
            }
        }
        Ok(client)
    }

    /// Connects, first starting `exe serve --detach` for the workspace when no daemon runs.
    pub fn connect_or_start(workspace: &Path, exe: &Path) -> Result<Self, ClientError> {
        match Client::connect(workspace) {
            Err(ClientError::NotRunning(_)) => {}
            other => return other,
        }
        let started = spawn_detached(exe, workspace, &[]);
        // Two clients may race to start it; whoever lost connects to the winner's daemon.
        match (Client::connect(workspace), started) {
            (Ok(client), _) => Ok(client),
            (Err(_), Err(error)) => Err(ClientError::Start(format!("{error:#}"))),
            (Err(error), Ok(_)) => Err(error),
        }
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon_pid
    }

    /// Sends a request and waits for its reply; events arriving meanwhile are kept for
    /// [`Client::next_event`]. An error reply is returned as `ClientError::Daemon`.
    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(&mut self.writer, &ClientFrame { id, request })?;
        loop {
            match self.read(None)? {
                Some(ServerFrame::Reply { id: got, response }) if got == id || got == 0 => {
                    return match response {
                        Response::Error { message } => Err(ClientError::Daemon(message)),
                        response => Ok(response),
                    };
                }
                Some(ServerFrame::Reply { id: got, .. }) => {
                    return Err(ClientError::Protocol(format!(
                        "a reply to request {got} while waiting for {id}"
                    )))
                }
                Some(ServerFrame::Event { event }) => self.events.push_back(event),
                None => unreachable!("no timeout was set"),
            }
        }
    }

    /// The next event of a subscription; `None` when `timeout` passed without one.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, ClientError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        match self.read(timeout)? {
            Some(ServerFrame::Event { event }) => Ok(Some(event)),
            Some(ServerFrame::Reply { id, .. }) => Err(ClientError::Protocol(format!(
                "an unexpected reply to request {id}"
            ))),
            None => Ok(None),
        }
    }

    /// Reads one frame, waiting at most `timeout` for it to begin.
    fn read(&mut self, timeout: Option<Duration>) -> Result<Option<ServerFrame>, ClientError> {
        if self.reader.buffer().is_empty() {
            self.set_timeout(timeout)?;
            match self.reader.fill_buf() {
                Ok([]) => return Err(ClientError::Closed),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e.into()),
            }
        }
        // A frame that has begun is read whole, however long the rest takes.
        self.set_timeout(None)?;
        let body = read_frame(&mut self.reader)?.ok_or(ClientError::Closed)?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if self.timeout != timeout {
            self.reader.get_ref().set_read_timeout(timeout)?;
            self.timeout = timeout;
        }
        Ok(())
    }

    pub fn submit(&mut self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, ClientError> {
        match self.call(Request::Submit { jobs })? {
            Response::Submitted { ids } => Ok(ids),
            other => Err(unexpected(other)),
        }
    }

    pub fn job(&mut self, id: JobId) -> Result<JobRecord, ClientError> {
        match self.call(Request::Job { id })? {
            Response::Job { job } => Ok(*job),
            other => Err(unexpected(other)),
        }
    }

    /// A catalogued product's files, with their states and local paths.
    pub fn product_files(&mut self, pdsid: &str) -> Result<Vec<ProductFile>, ClientError> {
        match self.call(Request::Catalog {
            query: CatalogRequest::Show {
                pdsid: pdsid.to_string(),
            },
        })? {
            Response::Product { files, .. } => Ok(files),
            other => Err(unexpected(other)),
        }
    }

    pub fn subscribe(&mut self, job: Option<JobId>) -> Result<(), ClientError> {
        match self.call(Request::Subscribe { job })? {
            Response::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

pub fn unexpected(response: Response) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {response:?}"))
}
