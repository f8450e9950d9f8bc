// A ping-pong bot written only with the official Discord libraries, unchanged: @discordjs/ws connects
// to our gateway (after @discordjs/rest fetched GET /v1/gateway/bot from us) and @discordjs/rest
// answers through our /v1. Driven by run.py; runnable by hand against any server:
//
//   FLUXER_API=http://127.0.0.1:8080 FLUXER_BOT_TOKEN=... node pingpong.mjs
//
// Prints "READY <session_id> <bot user id>" once the gateway session is ready, "HEARTBEAT_ACK ..." for
// each heartbeat the gateway acknowledges, "GOT <event> ..." for the guilds and messages it sees and
// "REPLIED <message id> ..." after answering. Exits 0 after replying "pong" to a message "ping",
// 1 on an error, 2 when that did not happen within FLUXER_COMPAT_TIMEOUT_MS (default 30 s).
// Library debug output goes to stderr.

import process from 'node:process';
import { REST } from '@discordjs/rest';
import { WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';
import { GatewayDispatchEvents, GatewayIntentBits, Routes } from 'discord-api-types/v10';

const api = process.env.FLUXER_API ?? 'http://127.0.0.1:8080';
const token = process.env.FLUXER_BOT_TOKEN;
const timeoutMs = Number(process.env.FLUXER_COMPAT_TIMEOUT_MS ?? 30_000);
if (!token) {
	console.error('FLUXER_BOT_TOKEN is not set');
	process.exit(1);
}

const debug = (...parts) => console.error('[debug]', ...parts);

// Our REST API lives under /v1, so: api + '/v' + version. A test-mode server turns rate limits off
// unless a request opts in; the bot opts in, so the library sees (and obeys) the real X-RateLimit-* headers.
const rest = new REST({ api, version: '1', headers: { 'X-Fluxer-Test-Enable-Rate-Limits': 'true' } }).setToken(token);
rest.on('restDebug', (info) => debug('rest:', info));
rest.on('rateLimited', (info) => debug('rest rate limited:', JSON.stringify(info)));
rest.on('invalidRequestWarning', (info) => debug('rest invalid requests:', JSON.stringify(info)));

// Our gateway speaks version 1 only (any other `v` is closed with 4012).
const manager = new WebSocketManager({
	token,
	intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages | GatewayIntentBits.MessageContent,
	rest,
	version: '1',
});

let botUserId = null;
let finished = false;

async function finish(code, message) {
	if (finished) return;
	finished = true;
	(code === 0 ? console.log : console.error)(message);
	clearTimeout(timer);
	try {
		await manager.destroy({ reason: 'ping-pong done' });
	} catch (error) {
		debug('destroy failed:', error);
	}
	process.exit(code);
}

const timer = setTimeout(
	() => void finish(2, `TIMEOUT no "ping" answered within ${timeoutMs} ms (bot ready: ${botUserId !== null})`),
	timeoutMs,
);

manager.on(WebSocketShardEvents.Debug, (message, shardId) => debug(`shard ${shardId}:`, message));
manager.on(WebSocketShardEvents.Error, (error, shardId) => void finish(1, `ERROR shard ${shardId}: ${error?.stack ?? error}`));
manager.on(WebSocketShardEvents.HeartbeatComplete, ({ latency }, shardId) =>
	console.log(`HEARTBEAT_ACK shard=${shardId} latency=${latency}ms`));
manager.on(WebSocketShardEvents.Closed, (code, shardId) => debug(`shard ${shardId} closed with ${code}`));

manager.on(WebSocketShardEvents.Ready, (data, shardId) => {
	botUserId = data.user.id;
	console.log(`READY ${data.session_id} ${data.user.id} shard=${shardId} guilds=${data.guilds.length} user=${data.user.username}`);
});

manager.on(WebSocketShardEvents.Dispatch, async (payload, shardId) => {
	if (payload.t === GatewayDispatchEvents.GuildCreate) {
		console.log(`GOT GUILD_CREATE ${payload.d.id} seq=${payload.s} shard=${shardId}`);
		return;
	}
	if (payload.t !== GatewayDispatchEvents.MessageCreate) return;
	const message = payload.d;
	console.log(`GOT MESSAGE_CREATE ${message.id} channel=${message.channel_id} author=${message.author?.id} ` +
		`content=${JSON.stringify(message.content)} seq=${payload.s}`);
	if (message.author?.id === botUserId || message.content !== 'ping') return;
	try {
		const reply = await rest.post(Routes.channelMessages(message.channel_id), {
			body: { content: 'pong', message_reference: { message_id: message.id } },
		});
		await finish(0, `REPLIED ${reply.id} channel=${reply.channel_id} author=${reply.author.id} ` +
			`content=${JSON.stringify(reply.content)}`);
	} catch (error) {
		await finish(1, `ERROR replying: ${error?.stack ?? error}`);
	}
});

try {
	await manager.connect();
} catch (error) {
	await finish(1, `ERROR connecting: ${error?.stack ?? error}`);
}
