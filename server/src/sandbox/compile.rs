//! Compiling user source at create and update time.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Budget, Instance, InvokeError, Step};

/// Bytecode of an action with its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// Lua 5.4 bytecode with debug information (for line numbers).
    pub bytecode: Vec<u8>,
    /// Hex SHA-256 of `bytecode`.
    pub checksum: String,
}

impl Compiled {
    /// Wraps stored bytecode after checking it against its checksum.
    pub fn verified(bytecode: Vec<u8>, checksum: &str) -> Result<Self, InvokeError> {
        let actual = checksum_of(&bytecode);
        if actual != checksum {
            return Err(InvokeError::Internal(format!(
                "stored bytecode does not match its checksum (expected {checksum}, found {actual}); recreate the action"
            )));
        }
        Ok(Self { bytecode, checksum: actual })
    }
}

/// Hex SHA-256.
pub fn checksum_of(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Compiles `source` in text mode, runs its chunk under `budget` and checks
/// that it defines a global `main` function (or returns a table: a library
/// for `require`). Blocks for up to `budget.timeout`: call it from the
/// blocking pool, never the reactor. A `require` at the top of the chunk
/// fails; use [`compile_with`] to resolve it.
///
/// `source` is bytes: Lua source may hold any bytes in its string literals
/// and comments, UTF-8 or not (`&str`, `String` and `Vec<u8>` all do).
///
/// Every failure is [`InvokeError::Compile`] with a message for the user.
pub fn compile(name: &str, source: impl AsRef<[u8]>, budget: Budget) -> Result<Compiled, InvokeError> {
    compile_with(name, source, budget, &|lib| Err(format!("require: no library '{lib}' here")))
}

/// [`compile`], with `libraries` resolving the chunk's `require` calls to
/// the checksum-verified bytecode of library actions (the server reads
/// them from the store).
pub fn compile_with(
    name: &str,
    source: impl AsRef<[u8]>,
    budget: Budget,
    libraries: &dyn Fn(&str) -> Result<Compiled, String>,
) -> Result<Compiled, InvokeError> {
    compile_bytes(name, source.as_ref(), budget, libraries)
}

fn compile_bytes(
    name: &str,
    source: &[u8],
    budget: Budget,
    libraries: &dyn Fn(&str) -> Result<Compiled, String>,
) -> Result<Compiled, InvokeError> {
    let instance = Instance::from_source(name, source, budget.max_string)?;
    let bytecode = instance.dump().ok_or_else(|| InvokeError::Internal("no chunk to dump".into()))?;
    let mut run = instance.start_init(budget);
    let outcome = loop {
        match run.step(budget.timeout + Duration::from_secs(1)) {
            Step::Yielded => continue,
            Step::Call(_) => {
                run.deliver(Err("call() is not available while an action is created: call plugins from main".into()))
            }
            Step::Invoke(_) => run
                .deliver(Err("invoke() is not available while an action is created: invoke actions from main".into())),
            Step::Publish(_) => {
                run.deliver(Err("publish() is not available while an action is created: publish from main".into()))
            }
            Step::Require(lib) => match libraries(&lib) {
                Ok(code) => run.deliver_module(&lib, &code.bytecode),
                Err(message) => run.deliver(Err(message)),
            },
            Step::Done(outcome) => break outcome,
        }
    };
    match outcome.result {
        Ok(_) => Ok(Compiled { checksum: checksum_of(&bytecode), bytecode }),
        Err(InvokeError::Compile(m)) => Err(InvokeError::Compile(m)),
        Err(InvokeError::Limit(kind)) => {
            Err(InvokeError::Compile(format!("running the chunk at create time hit the {} limit", kind.kind())))
        }
        Err(e) => Err(InvokeError::Compile(format!("running the chunk failed: {e}"))),
    }
}
