//! `testnet top`: the explorer's overview of the running network, drawn in the terminal and refreshed
//! live: every node's role, height, round and mempool; each shard's head, best bid and ask and last trade;
//! the coordinator's latest epochs with the height each commits per shard; the bridge's recent messages.
//! The data comes from the explorer's collectors run in this process, so it needs no explorer running.

use std::{sync::Arc, time::Duration};

use eyre::WrapErr;
use ratatui::{
    backend::TestBackend,
    crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers},
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Block, Paragraph, Row, Table},
    Frame, Terminal,
};
use shardex_explorer::{
    collect::{Explorer, Network as Followed},
    view::{Overview, ShardView},
};

use crate::network::Network;

/// How often the screen is redrawn.
const REFRESH: Duration = Duration::from_millis(500);
/// How long `--once` waits for every shard's first block before it draws anyway.
const ONCE_WAIT: Duration = Duration::from_secs(10);
/// How long `--once` follows the network at least.
const ONCE_MIN: Duration = Duration::from_secs(1);

/// Starts following the network in `dir` with the explorer's collectors.
fn follow(dir: &std::path::Path) -> eyre::Result<Arc<Explorer>> {
    let net = Network::load(dir)?;
    let cfg = crate::explorer::config(&net, &dir.join("top"), 0)?;
    let followed = Followed::from_config(&cfg).wrap_err("reading the network's genesis files")?;
    let explorer = Arc::new(Explorer::new(followed, cfg.view));
    // The collectors stop with the runtime when `top` returns.
    drop(explorer.spawn());
    Ok(explorer)
}

/// Draws one frame of `width` × `height` once every shard has a block (after 1 to 10 s) and prints it as text.
pub async fn once(dir: &std::path::Path, width: u16, height: u16) -> eyre::Result<()> {
    let explorer = follow(dir)?;
    let start = tokio::time::Instant::now();
    // At least a second, so a few blocks, epochs and messages are in.
    while start.elapsed() < ONCE_WAIT && (start.elapsed() < ONCE_MIN || !heard_from_all(&explorer.snapshot())) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut terminal = Terminal::new(TestBackend::new(width, height))?;
    terminal.draw(|f| draw(f, &explorer.snapshot()))?;
    print!("{}", text(terminal.backend()));
    Ok(())
}

/// Every shard has a head, every node answered, and the epochs and bridge (when configured) were heard from.
fn heard_from_all(o: &Overview) -> bool {
    o.shards.iter().all(|s| s.head.is_some() && s.nodes.iter().all(|n| !n.role.is_empty()))
        && o.coordinator.as_ref().is_none_or(|c| !c.epochs.is_empty())
}

/// The screen, refreshed every 500 ms until q, Esc or ctrl-c.
pub async fn run(dir: &std::path::Path) -> eyre::Result<()> {
    let explorer = follow(dir)?;
    let mut terminal = ratatui::try_init().wrap_err("`testnet top` needs a terminal (or use --once)")?;
    let result = async {
        loop {
            terminal.draw(|f| draw(f, &explorer.snapshot()))?;
            // Keys are read off the async runtime so the collectors keep running.
            let quit = tokio::task::spawn_blocking(|| -> std::io::Result<bool> {
                if !event::poll(REFRESH)? {
                    return Ok(false);
                }
                Ok(match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => {
                        matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                            || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL))
                    }
                    _ => false,
                })
            })
            .await??;
            if quit {
                return eyre::Ok(());
            }
        }
    }
    .await;
    ratatui::restore();
    result
}

/// The backend's screen as plain text, trailing spaces trimmed.
fn text(backend: &TestBackend) -> String {
    let buffer = backend.buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width).filter_map(|x| buffer.cell((x, y)).map(|c| c.symbol())).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

/// Draws the overview: a header line, the nodes, the shards' markets, then epochs beside the bridge.
fn draw(f: &mut Frame, o: &Overview) {
    let nodes: usize = o.shards.iter().map(|s| s.nodes.len()).sum();
    let [title, nodes_area, markets_area, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::try_from(nodes + 3).unwrap_or(u16::MAX)),
        Constraint::Length(u16::try_from(o.shards.len() + 3).unwrap_or(u16::MAX)),
        Constraint::Min(6),
    ])
    .areas(f.area());
    let epoch = o.coordinator.as_ref().and_then(|c| c.epochs.front()).map_or(String::new(), |e| {
        format!(" · epoch {} {}", e.number, if e.verified { "signed ✓" } else { "BAD SIGNATURE" })
    });
    f.render_widget(
        Paragraph::new(Line::from(format!(
            "shardex testnet · chain {} · {} shards · {nodes} nodes{epoch} · q to quit",
            o.chain_id,
            o.shards.len()
        )))
        .style(bold()),
        title,
    );
    draw_nodes(f, nodes_area, o);
    draw_markets(f, markets_area, o);
    let [epochs, bridge] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(bottom);
    draw_epochs(f, epochs, o);
    draw_bridge(f, bridge, o);
}

fn draw_nodes(f: &mut Frame, area: Rect, o: &Overview) {
    let rows = o.shards.iter().flat_map(|s| {
        s.nodes.iter().map(move |n| {
            let style = match (&n.error, n.role.as_str()) {
                (Some(_), _) => Style::default().fg(Color::Red),
                (None, "proposer") => Style::default().fg(Color::Green),
                _ => Style::default(),
            };
            let state = match &n.error {
                Some(e) => e.chars().take(60).collect(),
                None => format!("0x{}…", n.state_root.get(..12).unwrap_or_default()),
            };
            Row::new(vec![
                s.shard_id.to_string(),
                s.symbol.clone(),
                n.endpoint.trim_start_matches("http://").to_owned(),
                if n.role.is_empty() { "-".into() } else { n.role.clone() },
                n.height.to_string(),
                n.round.to_string(),
                n.mempool.to_string(),
                state,
            ])
            .style(style)
        })
    });
    let widths = [
        Constraint::Length(5),
        Constraint::Length(12),
        Constraint::Length(16),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Fill(1),
    ];
    let header =
        Row::new(["SHARD", "MARKET", "NODE", "ROLE", "HEIGHT", "ROUND", "MEMPOOL", "STATE ROOT"]).style(bold());
    f.render_widget(Table::new(rows, widths).header(header).block(Block::bordered().title(" nodes ")), area);
}

fn draw_markets(f: &mut Frame, area: Rect, o: &Overview) {
    let rows = o.shards.iter().map(|s: &ShardView| {
        let head = s.head.as_ref();
        let best = |levels: &[shardex_explorer::view::LevelView]| {
            levels.first().map_or("-".into(), |l| format!("{} × {}", l.lots, l.price.trim_end_matches(" USD")))
        };
        let last = s.trades.front().map_or("-".into(), |t| {
            format!("{} {} @ {} (h {})", t.side, t.lots, t.price.trim_end_matches(" USD"), t.height)
        });
        Row::new(vec![
            s.shard_id.to_string(),
            s.symbol.clone(),
            if s.mode.is_empty() { "?".into() } else { s.mode.clone() },
            head.map_or("-".into(), |h| h.height.to_string()),
            head.map_or("-".into(), |h| format!("{} txs, round {}", h.txs, h.round)),
            best(&s.book.bids),
            best(&s.book.asks),
            if s.options { format!("{} series · {last}", s.series.len()) } else { last },
        ])
    });
    let widths = [
        Constraint::Length(5),
        Constraint::Length(12),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(16),
        Constraint::Length(22),
        Constraint::Length(22),
        Constraint::Fill(1),
    ];
    let header =
        Row::new(["SHARD", "MARKET", "MODE", "HEAD", "LAST BLOCK", "BEST BID", "BEST ASK", "LAST TRADE"]).style(bold());
    f.render_widget(Table::new(rows, widths).header(header).block(Block::bordered().title(" markets ")), area);
}

fn draw_epochs(f: &mut Frame, area: Rect, o: &Overview) {
    let block = Block::bordered().title(" coordinator epochs ");
    let Some(c) = &o.coordinator else {
        f.render_widget(Paragraph::new("not part of this network").block(block), area);
        return;
    };
    let ids: Vec<u32> = o.shards.iter().map(|s| s.shard_id).collect();
    let rows = c.epochs.iter().map(|e| {
        let mut cells = vec![
            e.number.to_string(),
            format!("{} ms ago", o.now_ms.saturating_sub(e.time_ms)),
            if e.verified { "✓".into() } else { "✗".into() },
        ];
        cells.extend(ids.iter().map(|id| e.heights.get(id).map_or("-".into(), u64::to_string)));
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(7), Constraint::Length(12), Constraint::Length(2)];
    widths.extend(ids.iter().map(|_| Constraint::Length(8)));
    let mut header = vec!["EPOCH".to_owned(), "SIGNED".into(), String::new()];
    header.extend(ids.iter().map(|id| format!("SHARD {id}")));
    let title = match &c.error {
        Some(e) => {
            Block::bordered().title(format!(" coordinator epochs · {} ", e.chars().take(50).collect::<String>()))
        }
        None => block,
    };
    f.render_widget(Table::new(rows, widths).header(Row::new(header).style(bold())).block(title), area);
}

fn draw_bridge(f: &mut Frame, area: Rect, o: &Overview) {
    let block = Block::bordered().title(" bridge messages ");
    let Some(b) = &o.bridge else {
        f.render_widget(Paragraph::new("not part of this network").block(block), area);
        return;
    };
    let rows = b.messages.iter().map(|m| {
        let t0 = m.seen_ms.get("locked").copied();
        let stages = ["locked", "committed", "delivered", "acked", "refunded"]
            .iter()
            .filter_map(|st| {
                let t = m.seen_ms.get(st)?;
                Some(match t0 {
                    Some(t0) if *st != "locked" => format!("{st} +{}", t.saturating_sub(t0)),
                    _ => (*st).to_owned(),
                })
            })
            .collect::<Vec<_>>()
            .join(" → ");
        Row::new(vec![
            format!("{} → {} #{}", m.src, m.dst, m.seq),
            m.amount.trim_end_matches(" USD").to_owned(),
            m.lock_to_credit_ms.map_or("-".into(), |ms| format!("{ms} ms")),
            stages,
        ])
    });
    let widths = [Constraint::Length(12), Constraint::Length(16), Constraint::Length(9), Constraint::Fill(1)];
    let header = Row::new(["MESSAGE", "AMOUNT (USD)", "TO CREDIT", "STAGES (ms after the lock)"]).style(bold());
    let title = format!(
        " bridge · delivered {} acked {} refunded {} · lock-to-credit p50 {} ms p99 {} ms ",
        b.delivered, b.acked, b.refunded, b.latency_p50_ms, b.latency_p99_ms
    );
    f.render_widget(Table::new(rows, widths).header(header).block(Block::bordered().title(title)), area);
}
