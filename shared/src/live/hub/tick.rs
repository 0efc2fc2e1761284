//! The hub's clock: every [`super::TICK`] a socket's credentials are
//! checked again when due, and a bridge is handed the commands waiting for
//! its instruments.

use serde_json::json;

use super::{COMMANDS_PER_TICK, Peer, Reaction, request};
use crate::ctx::Ctx;
use crate::live::persist::{self, Bridge};
use crate::platform::Platform;

/// Called every [`super::TICK`]: checks the credentials when due and hands a
/// bridge the commands waiting for its instruments.
pub async fn tick<P: Platform>(ctx: &Ctx<P>, peer: &mut Peer) -> Reaction {
    let mut rq = match request(ctx, peer) {
        Ok(rq) => rq,
        Err(reaction) => return reaction,
    };
    let rq = &mut rq;
    let result = async {
        let principal = peer.principal(ctx, rq, false).await?;
        let Some(bridge_id) = peer.bridge_id else {
            return Ok(Reaction::default());
        };
        let bridge = Bridge {
            id: bridge_id,
            organization_id: peer.organization_id,
        };
        let commands =
            persist::take_commands(ctx, rq, &principal, bridge, COMMANDS_PER_TICK).await?;
        Ok(if commands.is_empty() {
            Reaction::default()
        } else {
            Reaction::reply(json!({ "type": "commands", "commands": commands }).to_string())
        })
    }
    .await;
    match result {
        Ok(reaction) => reaction,
        Err(err) => {
            let reaction = Reaction::failure(rq, &err);
            if reaction.close.is_some() {
                reaction
            } else {
                // A passing failure (the database away): logged, and the
                // next tick tries again; nothing to tell the socket.
                Reaction::default()
            }
        }
    }
}
