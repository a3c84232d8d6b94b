//! The `switchyard` binary: parse the configuration and hand over to the library.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use switchyard::config::{
    Cli, Command, JobsCommand, LedgerCommand, LogFormat, PluginCommand, VaultCommand,
};
use switchyard::runtime::{Manifest, World};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (log_format, otlp) = match &cli.command {
        Command::Serve(args) => (
            args.log_format,
            args.otlp_endpoint.clone().map(|u| (u, args.otlp_protocol)),
        ),
        _ => (LogFormat::Text, None),
    };
    let traces = init_tracing(log_format, otlp);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchyard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Send the spans still batched.
    if let Some(provider) = traces
        && let Err(e) = provider.shutdown()
    {
        eprintln!("switchyard: traces not all exported: {e}");
    }
    code
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("listening on {} (SWITCHYARD_LISTEN)", config.listen))?;
            switchyard::run(config, listener).await
        }
        Command::Doctor(args) => {
            let config = args.into_config()?;
            let report = switchyard::doctor::run(&config).await;
            print!("{}", report.render());
            if !report.passed() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Migrate(args) => {
            std::fs::create_dir_all(&args.data_dir)?;
            let url = args.url();
            match (
                &args.database_owner_url,
                switchyard::store::backend_of(&url),
            ) {
                (Some(owner), _) => switchyard::migrate_postgres(owner, &url).await?,
                (None, Some(switchyard::store::Backend::Postgres)) => {
                    // One role does both: it owns the tables (serve then needs --insecure-db-role).
                    switchyard::migrate_postgres(&url, &url).await?
                }
                _ => {
                    switchyard::store::Store::open(&url)
                        .await?
                        .migrate()
                        .await?
                }
            }
            println!("migrations applied");
            Ok(())
        }
        Command::Vault(VaultCommand::Rotate { database, keys }) => {
            let keys = keys.load()?.ok_or_else(|| {
                anyhow::anyhow!("SWITCHYARD_MASTER_KEY (or SWITCHYARD_MASTER_KEY_FILE) is not set")
            })?;
            let store = switchyard::store::Store::open(&database.url()).await?;
            let vault = switchyard::vault::Vault::new(keys);
            let report = vault.rotate(&store).await?;
            println!(
                "vault rotated to key version {}: {} data keys re-sealed, {} already current",
                vault.current_version(),
                report.resealed,
                report.current
            );
            Ok(())
        }
        Command::Jobs(JobsCommand::Dead { database }) => {
            let store = switchyard::store::Store::open(&database.url()).await?;
            let mut tx = store
                .begin(
                    switchyard::tenancy::Scope::Host,
                    switchyard::store::Mode::Read,
                )
                .await?;
            let dead = tx.dead_jobs(1000).await?;
            tx.commit().await?;
            for (id, kind, attempts, error) in &dead {
                println!(
                    "{id}\t{kind}\t{attempts} attempts\t{}",
                    error.as_deref().unwrap_or("")
                );
            }
            println!("{} dead jobs", dead.len());
            Ok(())
        }
        Command::Jobs(JobsCommand::Replay { database, id }) => {
            let store = switchyard::store::Store::open(&database.url()).await?;
            let mut tx = store
                .begin(
                    switchyard::tenancy::Scope::Host,
                    switchyard::store::Mode::Write,
                )
                .await?;
            if !tx.replay_job(&id).await? {
                anyhow::bail!("no dead job {id}");
            }
            tx.commit().await?;
            println!("{id} queued again");
            Ok(())
        }
        Command::Ledger(LedgerCommand::Verify { database, tenant }) => {
            let store = switchyard::store::Store::open(&database.url()).await?;
            let scopes = match tenant {
                Some(t) => vec![
                    switchyard::tenancy::auth::one_tenant(&store, &t)
                        .await
                        .map_err(|e| anyhow::anyhow!("tenant {t}: {e}"))?,
                ],
                None => switchyard::tenancy::auth::every_tenant(&store).await?,
            };
            let mut broken = 0;
            let mut rows = 0;
            for scope in &scopes {
                let (n, first_break) = switchyard::consent::verify(&store, scope).await?;
                rows += n;
                if let Some(b) = first_break {
                    broken += 1;
                    println!(
                        "BROKEN tenant {} at row seq {}: {}",
                        b.tenant_id, b.seq, b.reason
                    );
                }
            }
            println!(
                "checked {} tenants, {rows} rows: {broken} broken chains",
                scopes.len()
            );
            if broken > 0 {
                anyhow::bail!("the consent ledger failed verification");
            }
            Ok(())
        }
        Command::Plugin(PluginCommand::Pack {
            component,
            name,
            version,
            world,
            egress,
            connection,
            credentials,
            api_base_url,
            channel,
            output,
        }) => {
            let world = match world.as_str() {
                "connector" => World::Connector,
                "reply-policy" => World::ReplyPolicy,
                other => anyhow::bail!("--world {other:?}: expected connector or reply-policy"),
            };
            let manifest = Manifest {
                name,
                version,
                world,
                interface: interface_of(&component)?.as_str().to_string(),
                egress,
                credentials,
                api_base_url,
                channel: match channel {
                    Some(path) => Some(
                        serde_json::from_slice(
                            &std::fs::read(&path)
                                .with_context(|| format!("reading {}", path.display()))?,
                        )
                        .with_context(|| {
                            format!("{} is not a channel-rules file", path.display())
                        })?,
                    ),
                    None => None,
                },
                connection: match connection {
                    Some(path) => Some(
                        serde_json::from_slice(
                            &std::fs::read(&path)
                                .with_context(|| format!("reading {}", path.display()))?,
                        )
                        .with_context(|| format!("{} is not a connection shape", path.display()))?,
                    ),
                    None => None,
                },
            };
            let bytes = std::fs::read(&component)
                .with_context(|| format!("reading {}", component.display()))?;
            let packed = manifest.embed(&bytes)?;
            std::fs::write(&output, packed)
                .with_context(|| format!("writing {}", output.display()))?;
            println!("packed {} -> {}", component.display(), output.display());
            Ok(())
        }
        Command::Plugin(PluginCommand::Inspect { component }) => {
            let bytes = std::fs::read(&component)
                .with_context(|| format!("reading {}", component.display()))?;
            let plugin = load_checked(&bytes)?;
            println!("{}", serde_json::to_string_pretty(plugin.manifest())?);
            // The manifest on stdout stays pure JSON; the signature goes to stderr.
            match switchyard::runtime::signature::signer(&bytes)? {
                Some(key) => eprintln!("signed by key {} ({})", key.id(), key.to_text()),
                None => eprintln!("unsigned"),
            }
            Ok(())
        }
        Command::Plugin(PluginCommand::New {
            name,
            world,
            dir,
            sdk,
        }) => {
            let world = match world.as_str() {
                "connector" => World::Connector,
                "reply-policy" => World::ReplyPolicy,
                other => anyhow::bail!("--world {other:?}: expected connector or reply-policy"),
            };
            let sdk = sdk.or_else(switchyard::authoring::default_sdk).context(
                "no switchyard-sdk found beside this binary's sources: give --sdk <path to plugins/sdk>",
            )?;
            let dir = dir.unwrap_or_else(|| std::path::PathBuf::from(&name));
            switchyard::authoring::new_plugin(&name, world, &dir, &sdk)?;
            println!(
                "created {world} plugin {name} in {}\nnext: cd {0} && cargo test && switchyard plugin build",
                dir.display()
            );
            Ok(())
        }
        Command::Plugin(PluginCommand::Build {
            manifest_path,
            output,
        }) => {
            let built =
                switchyard::authoring::build_plugin(&manifest_path, output.as_deref(), None)?;
            let bytes = std::fs::read(&built.path)
                .with_context(|| format!("reading {}", built.path.display()))?;
            load_checked(&bytes)?;
            println!(
                "built {}@{} ({}, {}) -> {} ({} KiB); it passes the host's load checks",
                built.manifest.name,
                built.manifest.version,
                built.manifest.world,
                built.manifest.interface,
                built.path.display(),
                bytes.len() / 1024
            );
            Ok(())
        }
        Command::Plugin(PluginCommand::Keygen { out }) => {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let key = switchyard::runtime::signature::SecretKey::generate()?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .with_context(|| format!("creating {} (it must not exist yet)", out.display()))?;
            file.write_all(key.to_text().as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            println!("{}", key.public().to_text());
            eprintln!(
                "secret key written to {} (keep it private); key id {}",
                out.display(),
                key.public().id()
            );
            Ok(())
        }
        Command::Plugin(PluginCommand::Sign {
            component,
            key,
            output,
        }) => {
            let secret = zeroize::Zeroizing::new(
                std::fs::read_to_string(&key)
                    .with_context(|| format!("reading {}", key.display()))?,
            );
            let secret = switchyard::runtime::signature::SecretKey::parse(&secret)?;
            let bytes = std::fs::read(&component)
                .with_context(|| format!("reading {}", component.display()))?;
            switchyard::runtime::Manifest::from_component(&bytes)
                .with_context(|| format!("{} is not a packed plugin", component.display()))?;
            let signed = switchyard::runtime::signature::sign(&bytes, &secret)?;
            std::fs::write(&output, signed)
                .with_context(|| format!("writing {}", output.display()))?;
            println!(
                "signed {} with key {} -> {}",
                component.display(),
                secret.public().id(),
                output.display()
            );
            Ok(())
        }
    }
}

/// Log to stderr in `format`, and export spans over OTLP when `otlp` names a collector; the
/// exporter, to flush at exit.
fn init_tracing(
    format: LogFormat,
    otlp: Option<(url::Url, switchyard::telemetry::OtlpProtocol)>,
) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let provider = otlp.and_then(|(url, protocol)| {
        switchyard::telemetry::provider(url.as_str(), protocol)
            .map_err(|e| eprintln!("switchyard: traces are off: the OTLP exporter failed: {e}"))
            .ok()
    });
    let otel = provider.as_ref().map(switchyard::telemetry::layer);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .init();
    provider
}

/// The interface version a component was built against, read from its exports.
fn interface_of(component: &std::path::Path) -> anyhow::Result<switchyard::runtime::Interface> {
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    switchyard::runtime::Interface::detect(&bytes).ok_or_else(|| {
        anyhow::anyhow!(
            "{} exports no switchyard:plugin channel or policy interface this host supports ({})",
            component.display(),
            switchyard::runtime::manifest::SUPPORTED_INTERFACES.join(", ")
        )
    })
}

/// Load a packed plugin with the host's checks (manifest, world, imports, compilation).
fn load_checked(bytes: &[u8]) -> anyhow::Result<switchyard::runtime::Plugin> {
    let runtime = switchyard::runtime::Runtime::new(
        Default::default(),
        switchyard::runtime::Services {
            secrets: std::sync::Arc::new(switchyard::vault::StaticSecrets::new()),
            egress: switchyard::egress::EgressClient::new(std::time::Duration::from_secs(1), 1)?,
        },
    )?;
    Ok(runtime.load(bytes, Vec::new())?)
}
