//! `looplab top ADDR`: a server's loop in the terminal, once a second.
//!
//! The same view as the `/loop` page, from the same long poll (`/loop/poll`, one answer
//! per window): a thread fetches, the main thread draws with ratatui and reads keys
//! with crossterm. `q` (or Esc, or Ctrl-C: raw mode turns it into a key) quits and
//! gives the terminal back as it was, also when drawing fails.

mod draw;
mod fetch;

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use draw::Screen;
use fetch::Fetched;
use std::io;
use std::sync::mpsc::{self, TryRecvError};
use std::time::Duration;

/// How often keys are looked at while no window arrives.
const KEY_POLL: Duration = Duration::from_millis(100);

/// Watch the loop whose `--metrics-addr` is `addr` until `q`.
pub fn run(addr: &str) -> io::Result<()> {
    let target = fetch::resolve(addr)?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("looplab-top-fetch".into())
        .spawn(move || fetch::run(target, tx))?;
    let mut terminal = ratatui::try_init().map_err(|e| {
        crate::error::context(
            "opening the terminal (looplab top needs a terminal: run it in one, not into a pipe)",
            e,
        )
    })?;
    let mut screen = Screen {
        addr: target.to_string(),
        ..Screen::default()
    };
    let result = watch(&mut terminal, &mut screen, &rx);
    // Restored whatever happened, so the shell is usable again.
    let restored = ratatui::try_restore();
    result.and(restored)
}

fn watch(
    terminal: &mut ratatui::DefaultTerminal,
    screen: &mut Screen,
    rx: &mpsc::Receiver<Fetched>,
) -> io::Result<()> {
    let mut dirty = true;
    loop {
        loop {
            match rx.try_recv() {
                Ok(Fetched::Window(w)) => {
                    screen.last = Some(*w);
                    screen.error = None;
                    dirty = true;
                }
                Ok(Fetched::Failed(e)) => {
                    screen.error = Some(e);
                    dirty = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    return Err(io::Error::other("the fetching thread stopped"));
                }
            }
        }
        if dirty {
            terminal.draw(|f| draw::screen(f, screen))?;
            dirty = false;
        }
        if event::poll(KEY_POLL)? {
            match event::read()? {
                Event::Key(k) if k.kind == KeyEventKind::Press && quits(k.code, k.modifiers) => {
                    return Ok(());
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
}

fn quits(code: KeyCode, modifiers: KeyModifiers) -> bool {
    match code {
        KeyCode::Char('q') | KeyCode::Esc => true,
        KeyCode::Char('c') => modifiers.contains(KeyModifiers::CONTROL),
        _ => false,
    }
}
