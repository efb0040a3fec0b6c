"""The ``bottega`` command: run the service in dev mode, chat in the terminal, check flows.

    bottega run [--publish-on-save]      web + worker (from the Procfile) on embedded Redis + fake Graph API
    bottega chat [--channel whatsapp|messenger|instagram] [--lang it|en] [--user ID] [--draft]
    bottega send TEXT [--channel ...]    post one signed webhook to the running dev service
    bottega flows check [PATH]           validate the course; exit 1 listing every problem; warnings too
    bottega flows test [PATH...]         replay the golden conversations in flows/tests/
    bottega flows graph FLOW [--format mermaid|dot] [--lang it|en]
    bottega flows stats [PATH] [--json]  modules, lessons, questions, words, longest messages
    bottega flows new ID [PATH] [--after MODULE]   a new module and its golden conversation
    bottega flows diff [PATH]            what publishing would change for learners on the live course
    bottega flows publish [PATH]         make the folder the live course for every process
    bottega templates check|submit       templates.yaml against the WhatsApp Business Account's templates
    bottega events list                  the Business Open Days of the live course, with their seats
    bottega events attendees ID          who has a seat, who is waiting (in order), who said no
    bottega events announce ID [--dry-run]   invite the event's audience (a dry run counts them by channel and how)
    bottega clock [show|advance 1d2h|set 2026-12-02T08:00]   the shared test clock (dev and test only)
    bottega broadcast plan|send --message ID [QUERY]   a broadcast's dry run, or send it with a progress bar
    bottega broadcast follow|report|pause|resume|cancel ID, bottega broadcast list
    bottega fake-graph [--port N]        the fake Graph API alone
    bottega admin add-user NAME --role viewer|editor|owner   a console admin (asks for the password)
    bottega admin list | set-password NAME | remove NAME
    bottega learner export REF [--output FILE]   everything stored about a learner, as JSON
    bottega learner erase REF [--yes]    erase a learner (every key; certificates revoked)
    bottega links TARGET [--campaign TAG] [--qr FOLDER]   wa.me / m.me / ig.me links (and QR codes) that start TARGET
    bottega inbox [list|show|reply|back|rescan] [LEARNER] [TEXT] [--as NAME]   handovers to a person
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot import channels
from bot.model.errors import ConfigError
from bot.model.events import Channel
from config.settings import Settings

if TYPE_CHECKING:
    import redis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bottega", description="Bottega, the chat tutor for shopkeepers")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start web + worker in dev mode with embedded Redis and a fake Graph API")
    run.add_argument("--publish-on-save", action="store_true",
                     help="publish the flows folder whenever a saved file passes the check (default: check only)")

    chat = commands.add_parser("chat", help="talk to Bottega as a learner, in this terminal (the live course)")
    chat.add_argument("--channel", choices=[p.channel.name for p in channels.every()],
                      default=channels.every()[0].channel.name)
    chat.add_argument("--lang", choices=["it", "en"], default=None)
    chat.add_argument("--user", default=None, help="learner id (WhatsApp phone digits or Messenger PSID)")
    chat.add_argument("--draft", action="store_true",
                      help="talk to the working flows folder, unpublished (another learner unless --user)")

    send = commands.add_parser("send", help="post one signed webhook to the running dev service")
    send.add_argument("text")
    send.add_argument("--channel", choices=[p.channel.name for p in channels.every()],
                      default=channels.every()[0].channel.name)
    send.add_argument("--user", default=None)
    send.add_argument("--url", default=None, help="webhook URL (default http://127.0.0.1:$PORT/webhook)")

    flows = commands.add_parser("flows", help="work with the course flows")
    flow_commands = flows.add_subparsers(dest="flows_command", required=True)
    check = flow_commands.add_parser("check", help="validate the flows; list every problem")
    check.add_argument("path", nargs="?", default=None, help="the flows folder (default: flows/)")

    test = flow_commands.add_parser("test", help="replay the golden conversations (default: flows/tests/)")
    test.add_argument("paths", nargs="*", help="transcript files or folders")
    graph = flow_commands.add_parser("graph", help="draw a module as a Mermaid or Graphviz graph")
    graph.add_argument("flow", help="the module id, e.g. m1_contatto")
    graph.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    graph.add_argument("--lang", choices=["it", "en"], default="it")
    stats = flow_commands.add_parser("stats", help="modules, lessons, questions, words, longest messages")
    stats.add_argument("path", nargs="?", default=None, help="the flows folder (default: flows/)")
    stats.add_argument("--json", action="store_true", help="print the numbers as JSON")

    new = flow_commands.add_parser("new", help="scaffold a module and its golden conversation; list it in "
                                   "course.yaml")
    new.add_argument("flow", help="the new module id, e.g. m11_prezzi")
    new.add_argument("path", nargs="?", default=None, help="the flows folder (default: flows/)")
    new.add_argument("--after", default="", metavar="MODULE", help="list it after this module (default: last)")

    for name, help_text in (("publish", "make the flows folder the live course for every process"),
                            ("diff", "what publishing would change for learners on the live course")):
        command = flow_commands.add_parser(name, help=help_text)
        command.add_argument("path", nargs="?", default=None, help="the flows folder (default: flows/)")

    templates = commands.add_parser("templates", help="compare templates.yaml with the WhatsApp Business Account")
    templates.add_argument("action", choices=["check", "submit"],
                           help="check: list missing, unapproved, paused or disabled ones; submit: create the missing")
    templates.add_argument("path", nargs="?", default=None, help="the flows folder (default: flows/)")

    events = commands.add_parser("events", help="Business Open Days: list them, who is coming, announce one")
    events.add_argument("action", choices=["list", "attendees", "announce"])
    events.add_argument("event", nargs="?", default="", help="the event id (events.yaml) for attendees and announce")
    events.add_argument("--dry-run", action="store_true", help="announce: count who would be invited, send nothing")

    clock = commands.add_parser("clock", help="show or move the shared test clock forward (dev and test only)")
    clock.add_argument("action", nargs="?", choices=["show", "advance", "set"], default="show")
    clock.add_argument("value", nargs="?", default="", help="advance: 1d, 2h30m, 90s; set: 2026-12-02T08:00 "
                       "(DEFAULT_TIME_ZONE unless an offset is given)")

    broadcast = commands.add_parser("broadcast", help="plan, send, follow, pause, resume, cancel or report a "
                                    "broadcast (README: Broadcasts)")
    from bot.broadcasts import console

    console.add_arguments(broadcast)

    fake = commands.add_parser("fake-graph", help="run the fake Graph API on loopback")
    fake.add_argument("--port", type=int, default=0)

    admin = commands.add_parser("admin", help="the admin console's users")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    add_user = admin_commands.add_parser("add-user", help="create a console admin; asks for the password")
    add_user.add_argument("name")
    add_user.add_argument("--role", choices=["viewer", "editor", "owner"], required=True)
    add_user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    admin_commands.add_parser("list", help="every admin and their role")
    set_password = admin_commands.add_parser("set-password", help="a new password (ends their sessions)")
    set_password.add_argument("name")
    set_password.add_argument("--password-stdin", action="store_true")
    remove_user = admin_commands.add_parser("remove", help="remove an admin (ends their sessions)")
    remove_user.add_argument("name")

    learner = commands.add_parser("learner", help="export or erase everything stored about one learner")
    learner.add_argument("action", choices=["export", "erase"])
    learner.add_argument("ref", help="learner reference from the logs, learner id, phone, Messenger/Instagram id "
                         "or BSUID")
    learner.add_argument("--output", default="", help="export: write the JSON here (default: standard output)")
    learner.add_argument("--yes", action="store_true", help="erase: do not ask for confirmation")
    links = commands.add_parser("links", help="entry links (wa.me, m.me, ig.me) and QR codes that start a module, "
                                "the check-up or an Open Day RSVP")
    links.add_argument("target", help="a module id (m1_contatto), checkup, menu or event:ID")
    links.add_argument("--campaign", default="", help="the source tag recorded on learners who come in (e.g. vetrina)")
    links.add_argument("--lang", choices=["it", "en"], default="it", help="the language of the WhatsApp text")
    links.add_argument("--channel", choices=[p.channel.name for p in channels.every()], default="")
    links.add_argument("--qr", default="", metavar="FOLDER", help="write each link's QR code (SVG and PNG) here")

    inbox = commands.add_parser("inbox", help="handovers to a person: list them, show one, reply, hand back")
    inbox.add_argument("action", nargs="?", choices=["list", "show", "reply", "back", "rescan"], default="list")
    inbox.add_argument("learner", nargs="?", default="", help="the learner id the list prints (wa:393331234567)")
    inbox.add_argument("text", nargs="?", default="", help="reply: the message")
    inbox.add_argument("--as", dest="admin", default="", help="the admin's name, kept with the reply")

    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ConfigError as error:
        print(f"bottega: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "run":
        from bot.dev.devserver import serve

        return serve(publish_on_save=args.publish_on_save)
    if args.command == "chat":
        return _chat(channels.named(args.channel), args.lang, args.user, draft=args.draft)
    if args.command == "send":
        from bot.dev.devserver import send_one

        return send_one(args.text, channels.named(args.channel), args.user, args.url)
    if args.command == "flows" and args.flows_command == "check":
        return _flows_check(args.path)
    if args.command == "flows" and args.flows_command == "new":
        return _flows_new(args.flow, args.path, args.after)
    if args.command == "flows" and args.flows_command in ("test", "graph", "stats"):
        return _flows_tool(args)
    if args.command == "flows" and args.flows_command in ("publish", "diff"):
        return _flows_release(args.flows_command, args.path)
    if args.command == "templates":
        return _templates(args.action, Path(args.path) if args.path else None)
    if args.command == "events":
        from bot.dev.embedded_redis import redis_for

        settings = _dev_settings()
        with redis_for(settings) as client:
            return _events(client, settings, args.action, args.event, dry_run=args.dry_run)
    if args.command == "clock":
        from bot.dev.clock_tool import clock_command

        return clock_command(_dev_settings(), args.action, args.value)
    if args.command == "broadcast":
        return _broadcast(args)
    if args.command == "admin":
        return _admin(args)
    if args.command == "learner":
        return _learner(args.action, args.ref, output=args.output, confirmed=args.yes)
    if args.command == "links":
        from bot.links.command import run as links_run

        return links_run(Settings.from_env(dev_default=True, require_secrets=False), args.target,
                         campaign=args.campaign, lang=args.lang, channel=args.channel, qr_folder=args.qr)
    if args.command == "inbox":
        from bot.handover.command import run as inbox_run

        return inbox_run(_service_settings(), args.action, args.learner, args.text, admin=args.admin)
    if args.command == "fake-graph":
        from bot.dev import fake_graph

        fake_graph.main(["--port", str(args.port), "--print-url"])
        return 0
    return 2


def _broadcast(args: argparse.Namespace) -> int:
    """``bottega broadcast ...`` on REDIS_URL (or the running `make run`'s Redis): ``bot.broadcasts.console``."""
    from bot import composition
    from bot.broadcasts import console
    from bot.broadcasts.service import Broadcasts
    from bot.delivery.broker import JobQueue, build_broker
    from bot.storage.releases import Registry

    settings = Settings.from_env(dev_default=True, require_secrets=False)  # an admin's tool: it sends nothing itself
    client, where = _reachable_redis(settings)
    if client is None:
        print(f"bottega broadcast: no Redis to work on: {where} (set REDIS_URL, or start `make run`)", file=sys.stderr)
        return 2
    url = settings.redis_url or f"unix://{client.connection_pool.connection_kwargs['path']}"
    try:
        registry = Registry.serving_live(client, public_base_url=settings.public_base_url,
                                         policy=composition.proactive_policy(settings))
    except LookupError as error:
        print(f"bottega broadcast: {error}", file=sys.stderr)
        return 2
    queue = JobQueue(build_broker(settings, url), settings)
    return console.run(args, Broadcasts.build(settings, client, registry, queue=queue))


def _dev_settings() -> Settings:
    return Settings.from_env(dev_default=True)


def _service_settings() -> Settings:
    """The settings of the running service: REDIS_URL, or the embedded Redis of a running `make run`."""
    import dataclasses

    from bot.dev import embedded_redis

    settings = _dev_settings()
    socket = settings.var_dir / "redis" / embedded_redis.SOCKET_NAME
    if not settings.redis_url and socket.exists():
        settings = dataclasses.replace(settings, redis_url=f"unix://{socket}")
    return settings


def _dev_user(channel: Channel, draft: bool) -> str:
    dev = channels.parts_for(channel).dev
    return dev.draft_user if draft else dev.default_user


def _chat(channel: Channel, lang: str | None, user: str | None, *, draft: bool = False) -> int:
    from bot.dev.embedded_redis import redis_for

    settings = _dev_settings()
    with redis_for(settings) as client:  # a running `make run` keeps its own Redis
        code = _chat_on(client, settings, channel, lang, user, draft=draft)
    if code == 0:
        print("\nBye! Your progress is saved.")
    return code


def _chat_on(client: redis.Redis, settings: Settings, channel: Channel, lang: str | None, user: str | None, *,
             draft: bool) -> int:
    from bot.dev.chat import Chat, draft_engines, live_engines, run_chat
    from bot.flows.problems import FlowError

    try:
        try:
            engines, source = draft_engines(client, settings) if draft else live_engines(client, settings)
        except FlowError as error:
            for problem in error.problems:
                print(problem, file=sys.stderr)
            what = "the draft" if draft else "the course"  # live: nothing was published and the folder fails
            print(f"{len(error.problems)} problem(s): {what} cannot be served; fix them (bottega flows check).",
                  file=sys.stderr)
            return 1
        chat = Chat(client=client, engines=engines, source=source, settings=settings, channel=channel,
                    user_id=user or _dev_user(channel, draft), out=sys.stdout)

        def read_line() -> str | None:
            try:
                line = input("> " if sys.stdin.isatty() else "")
            except EOFError:
                return None
            return line

        run_chat(chat, read_line, lang=lang)
    except KeyboardInterrupt:
        pass
    return 0


def _flows_check(path: str | None) -> int:
    from bot.flows.loader import check_course, course_files
    from bot.flows.problems import FlowError, in_order
    from bot.storage import releases

    settings = _dev_settings()
    folder = Path(path) if path else settings.flows_dir
    try:
        checked = check_course(folder)
    except FlowError as error:
        for problem in in_order([*error.problems, *error.warnings]):
            print(problem)
        warned = f" and {len(error.warnings)} warning(s)" if error.warnings else ""
        print(f"{len(error.problems)} problem(s){warned} found.", file=sys.stderr)
        return 1
    from bot.tutor.menu import reach_warnings

    warnings = [*checked.warnings, *reach_warnings(checked.course, str(folder))]
    client, where = _reachable_redis(settings)
    if client is None:
        compared = (f"Not compared with the live course ({where}): a changed module whose version was not "
                    "raised is caught only by 'bottega flows publish'.")
    else:
        try:
            live, unbumped = releases.live_warnings(client, checked.course, course_files(folder), folder=str(folder))
        finally:
            client.close()
        warnings += unbumped
        compared = f"Compared with live release {live} ({where})." if live else \
            f"No release is live yet on {where}: nothing to compare with."
    for problem in in_order(warnings):
        print(problem)
    print(compared)
    course = checked.course
    steps = sum(len(flow.steps) for flow in course.flows.values())
    warned = f"; {len(warnings)} warning(s)" if warnings else ""
    templates = f", {len(course.templates)} template(s)" if course.templates else ""
    templates += f", {len(course.open_days)} Open Day(s)" if course.open_days else ""
    print(f"OK: {len(course.flows)} flow(s), {steps} steps, {len(course.texts)} system texts{templates} in {folder}"
          f"{warned}. "
          + _next_steps(folder, settings, "bottega flows test; bottega chat --draft; bottega flows diff"))
    return 0


def _folder_arg(folder: Path, settings: Settings) -> str:
    """`` PATH`` when commands must be told the folder (not the default one), so a printed command works as is."""
    return "" if folder.resolve() == settings.flows_dir.resolve() else f" {folder}"


def _next_steps(folder: Path, settings: Settings, commands: str) -> str:
    """A "Next:" hint whose commands work as printed (test and chat read the folder from the environment)."""
    if folder.resolve() == settings.flows_dir.resolve():
        return f"Next: {commands}."
    return f"Next, with BOTTEGA_FLOWS_DIR={folder}: {commands}."


def _reachable_redis(settings: Settings) -> tuple[redis.Redis | None, str]:
    """A client for REDIS_URL, or for the embedded Redis of a running `make run`; never starts one.

    Returns (client, where it is) or (None, why there is none): ``flows check`` must not leave a
    redis-server behind, and says so when it could not compare.
    """
    import redis
    from redis.exceptions import RedisClusterException

    from bot import composition
    from bot.delivery.broker import CLUSTER_SCHEMES
    from bot.dev import embedded_redis

    if settings.redis_url:
        url, where = settings.redis_url, "REDIS_URL"
    else:
        socket = settings.var_dir / "redis" / embedded_redis.SOCKET_NAME
        if not socket.exists():
            return None, "REDIS_URL is not set and 'make run' is not running"
        url, where = f"unix://{socket}", "the 'make run' Redis"
    client: redis.Redis | None = None
    try:
        if url.startswith(CLUSTER_SCHEMES):  # a Redis Cluster, named by any of its nodes (as the web and worker do)
            client = composition.cluster_client(url)
        else:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
    except (redis.RedisError, RedisClusterException, OSError):
        if client is not None:
            client.close()
        return None, f"{where} does not answer"
    return client, where


def _flows_new(flow_id: str, path: str | None, after: str) -> int:
    from bot.dev.scaffold import ScaffoldError, scaffold

    settings = _dev_settings()
    folder = Path(path) if path else settings.flows_dir
    try:
        made = scaffold(folder, flow_id, after=after)
    except ScaffoldError as error:
        print(f"bottega flows new: {error}", file=sys.stderr)
        return 1
    where = f"after {made.after}" if made.after else "first"
    print(f"Created {made.module} (a commented template: replace its texts) and its golden conversation "
          f"{made.transcript}; listed it in {made.manifest}, {where}.")
    if not made.reachable:
        print(f"Note: a new learner's menu does not reach {flow_id} within its first pages, so its golden "
              "conversation, which taps it in the menu, fails. List it earlier: move it up in course.yaml, or "
              "scaffold with --after MODULE.")
    print(_next_steps(folder, settings, f"edit {made.module.name}; bottega flows check; bottega flows test "
                      f"{made.transcript}; bottega chat --draft; bottega flows diff; bottega flows publish"))
    return 0


def _flows_tool(args: argparse.Namespace) -> int:
    from bot.dev import transcripts
    from bot.flows import graph, stats

    flows_dir = _dev_settings().flows_dir
    if args.flows_command == "test":
        # sys.stdout as it is now: the default argument is the stream of import time
        return transcripts.main(args.paths, flows_dir=flows_dir, out=sys.stdout)
    if args.flows_command == "graph":
        return graph.main([args.flow, str(flows_dir), "--format", args.format, "--lang", args.lang])
    return stats.main([args.path or str(flows_dir), *(["--json"] if args.json else [])])


def _flows_release(command: str, path: str | None) -> int:
    from bot.dev.embedded_redis import redis_for

    settings = _dev_settings()
    folder = Path(path) if path else settings.flows_dir
    with redis_for(settings) as client:
        return _release_on(client, settings, command, folder)


def _release_on(client: redis.Redis, settings: Settings, command: str, folder: Path) -> int:
    from bot.flows.loader import course_files
    from bot.flows.problems import FlowError
    from bot.storage import releases

    try:
        files = course_files(folder)
        if command == "publish":
            published = releases.publish(client, files, folder=str(folder))
            if published.unchanged:
                print(f"Nothing to publish: release {published.release} is already this folder.")
            else:
                print(f"Published release {published.release} — {published.summary}. "
                      "Every process serves it from its next message.")
            return 0
        preview = releases.preview(client, files, folder=str(folder))
        print(preview.text)
        if preview.publishable:
            print(f"Publish with: bottega flows publish{_folder_arg(folder, settings)}")
        return 0
    except FlowError as error:
        for problem in [*error.problems, *error.warnings]:
            print(problem)
        print(f"{len(error.problems)} problem(s): nothing was published.", file=sys.stderr)
        return 1


def _admin(args: argparse.Namespace) -> int:
    """``bottega admin ...`` on REDIS_URL (or a running ``make run``'s Redis)."""
    from bot.console import audit
    from bot.console.users import Role, UserError, Users

    client, where = _reachable_redis(_dev_settings())
    if client is None:
        print(f"bottega admin: no Redis to write to: {where}.", file=sys.stderr)
        return 2
    users = Users(client)
    try:
        if args.admin_command == "list":
            for user in users.every():
                print(f"{user.name}\t{user.role.label}")
            return 0
        if args.admin_command == "remove":
            if not users.remove(args.name):
                print(f"bottega admin: no admin named {args.name!r}.", file=sys.stderr)
                return 1
            audit.record(client, "cli", "admin.remove", args.name)
            print(f"Removed admin {args.name}.")
            return 0
        password = _new_password(args.password_stdin)
        if args.admin_command == "add-user":
            users.add(args.name, Role.named(args.role), password)
            audit.record(client, "cli", "admin.add", args.name, args.role)
            print(f"Added {args.role} {args.name}. Sign in at /admin/login.")
        else:
            users.set_password(args.name, password)
            audit.record(client, "cli", "admin.set_password", args.name)
            print(f"New password set for {args.name}; their sessions ended.")
        return 0
    except UserError as error:
        print(f"bottega admin: {error}.", file=sys.stderr)
        return 1
    finally:
        client.close()


def _new_password(from_stdin: bool) -> str:
    import getpass

    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (12 characters or more): ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("bottega admin: the two passwords differ; nothing was changed.")
    return first


def _learner(action: str, ref: str, *, output: str, confirmed: bool) -> int:
    """``bottega learner export|erase REF`` on REDIS_URL (or a running ``make run``'s Redis)."""
    import json

    from bot import privacy
    from bot.console import audit
    from bot.model.privacy import learner_ref

    settings = _dev_settings()
    client, where = _reachable_redis(settings)
    if client is None:
        print(f"bottega learner: no Redis to read: {where}.", file=sys.stderr)
        return 2
    privacy.register(privacy.analytics_holder(settings))  # the analytics store holds rows about the learner too
    with client:
        found = privacy.find(client, ref)
        if not found:
            print("bottega learner: no learner matches that reference.", file=sys.stderr)
            return 1
        if len(found) > 1:
            print("bottega learner: that reference matches several learners; give one of their learner ids: "
                  + ", ".join(found), file=sys.stderr)
            return 1
        learner_id = found[0]
        if action == "export":
            document = json.dumps(privacy.export_learner(client, learner_id), ensure_ascii=False, indent=2)
            audit.record(client, "cli", "learner.export", learner_ref(learner_id))
            if output:
                Path(output).write_text(document + "\n", encoding="utf-8")
                print(f"Exported learner {learner_ref(learner_id)} to {output}.")
            else:
                print(document)
            return 0
        if not confirmed:
            answer = input(f"Erase learner {learner_ref(learner_id)} ({learner_id}) and revoke their certificates? "
                           "This cannot be undone. Type 'erase' to confirm: ")
            if answer.strip() != "erase":
                print("Nothing was erased.")
                return 1
        erased = privacy.erase_learner(client, learner_id)
        audit.record(client, "cli", "learner.erase", erased.ref, f"{erased.total} keys or entries removed")
        print(f"Erased learner {erased.ref}: {erased.total} keys or entries removed ("
              + ", ".join(f"{name} {count}" for name, count in erased.removed.items()) + ").")
        return 0


def _templates(action: str, path: Path | None) -> int:
    """``bottega templates check|submit``: templates.yaml against the WhatsApp Business Account's."""
    from dataclasses import replace

    from bot.delivery.graph import GraphError
    from bot.delivery.template_admin import TemplateAdmin
    from bot.dev.devserver import running_graph_url
    from bot.flows.loader import check_course
    from bot.flows.problems import FlowError
    from bot.proactive.templates import TemplateState, compare, submission

    settings = _dev_settings()
    folder = path or settings.flows_dir
    if settings.dev and settings.graph_api_url == Settings.graph_api_url and running_graph_url(settings):
        settings = replace(settings, graph_api_url=running_graph_url(settings))  # `make run`'s fake Graph API
    try:
        declared = check_course(folder).course.templates
    except FlowError as error:
        for problem in error.problems:
            print(problem)
        print(f"{len(error.problems)} problem(s) in {folder}: fix them first (bottega flows check).", file=sys.stderr)
        return 1
    if not declared:
        print(f"No templates are declared in {folder}/templates.yaml: nothing to compare.")
        return 0
    try:
        admin = TemplateAdmin(settings)
        findings = compare(declared, admin.templates())
        if action == "submit":
            by_name = {spec.name: spec for spec in declared}
            for finding in findings:
                if finding.state is TemplateState.MISSING:
                    spec = by_name[finding.name]
                    lang = next(code for code in ("it", "en") if spec.code(code) == finding.language)
                    answer = admin.create(submission(spec, lang))
                    print(f"{finding.name} ({finding.language}): submitted, Meta says {answer.get('status', '?')}")
            findings = compare(declared, admin.templates())
    except GraphError as error:
        print(f"bottega templates: {error}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    unusable = [finding for finding in findings if not finding.usable]
    where = f"WABA {settings.whatsapp_business_account_id} on {settings.graph_api_url}"
    print(f"{len(findings) - len(unusable)} of {len(findings)} template(s) can be sent ({where}).")
    return 1 if unusable else 0


def _events(client: redis.Redis, settings: Settings, action: str, event_id: str, *, dry_run: bool) -> int:
    """``bottega events list|attendees ID|announce ID [--dry-run]`` on the live course's Open Days."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot import composition
    from bot.delivery.open_days import announce
    from bot.storage.encoding import text
    from bot.storage.keys import LearnerPart, learner_key
    from bot.storage.open_day_ledger import OpenDayLedger
    from bot.tutor.progress import Progress

    def hash_text(raw: dict) -> dict[str, str]:
        return {text(key): text(value) for key, value in raw.items()}

    engine = composition.registry(settings, client).engine
    ledger = OpenDayLedger(client)
    if action == "list":
        if not engine.course.open_days:
            print("No Open Days in the live course (add them to flows/events.yaml, then bottega flows publish).")
        for event in engine.course.open_days:
            at = datetime.fromtimestamp(event.start_ms / 1000, tz=ZoneInfo(event.time_zone))
            seats = ledger.attendees(event.id)
            print(f"{event.id}  {at:%Y-%m-%d %H:%M %Z}  {event.title.get('it')}  seats {len(seats.seated)}/"
                  f"{event.capacity}, waiting {len(seats.waiting)}, declined {len(seats.declined)}")
        return 0
    chosen = engine.course.open_day(event_id)
    if chosen is None:
        known = ", ".join(e.id for e in engine.course.open_days) or "none"
        print(f"bottega events: no event '{event_id}' in the live course (known: {known}); "
              "publish events.yaml with bottega flows publish", file=sys.stderr)
        return 2
    if action == "announce":
        clock = composition.clock(settings, client)
        found = announce(client, composition.store(settings, client), engine.course, engine.policy, chosen,
                         now_ms=clock(), dry_run=dry_run)
        print("\n".join(found.lines()))
        return 0
    seats = ledger.attendees(chosen.id)
    print(f"{chosen.id}: {len(seats.seated)} of {chosen.capacity} seats taken, {len(seats.waiting)} waiting, "
          f"{len(seats.declined)} declined")
    for title, learner_ids in (("seated", seats.seated), ("waiting", seats.waiting), ("declined", seats.declined)):
        for number, learner_id in enumerate(learner_ids, start=1):
            progress = Progress.from_hash(hash_text(client.hgetall(learner_key(learner_id, LearnerPart.PROGRESS))))
            name = progress.name if progress else ""
            print(f"  {title:8} {number:4}  {learner_id}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
