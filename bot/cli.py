"""The ``bottega`` command: run the service in dev mode, chat in the terminal, check flows.

    bottega run                          web + worker (from the Procfile) on embedded Redis + fake Graph API
    bottega chat [--channel whatsapp|messenger] [--lang it|en] [--user ID]
    bottega send TEXT [--channel ...]    post one signed webhook to the running dev service
    bottega flows check [PATH]           validate the course; exit 1 listing every problem
    bottega flows test [PATH...]         replay the golden conversations in flows/tests/
    bottega flows graph FLOW [--format mermaid|dot] [--lang it|en]
    bottega flows stats [PATH] [--json]  modules, lessons, questions, words, longest messages
    bottega flows diff [PATH]            what publishing would change for learners on the live course
    bottega flows publish [PATH]         make the folder the live course for every process
    bottega fake-graph [--port N]        the fake Graph API alone
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.events import Channel
from config.settings import ConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bottega", description="Bottega, the chat tutor for shopkeepers")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("run", help="start web + worker in dev mode with embedded Redis and a fake Graph API")

    chat = commands.add_parser("chat", help="talk to Bottega as a learner, in this terminal")
    chat.add_argument("--channel", choices=[c.value for c in Channel], default=Channel.WHATSAPP.value)
    chat.add_argument("--lang", choices=["it", "en"], default=None)
    chat.add_argument("--user", default=None, help="learner id (WhatsApp phone digits or Messenger PSID)")

    send = commands.add_parser("send", help="post one signed webhook to the running dev service")
    send.add_argument("text")
    send.add_argument("--channel", choices=[c.value for c in Channel], default=Channel.WHATSAPP.value)
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

    for name, help_text in (("publish", "make the flows folder the live course for every process"),
                            ("diff", "what publishing would change for learners on the live course")):
        command = flow_commands.add_parser(name, help=help_text)
        command.add_argument("path", nargs="?", default=None, help="the flows folder (default: flows/)")

    fake = commands.add_parser("fake-graph", help="run the fake Graph API on loopback")
    fake.add_argument("--port", type=int, default=0)

    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ConfigError as error:
        print(f"bottega: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "run":
        from bot.devserver import serve

        return serve()
    if args.command == "chat":
        return _chat(Channel(args.channel), args.lang, args.user)
    if args.command == "send":
        from bot.devserver import send_one

        return send_one(args.text, Channel(args.channel), args.user, args.url)
    if args.command == "flows" and args.flows_command == "check":
        return _flows_check(args.path)
    if args.command == "flows" and args.flows_command in ("test", "graph", "stats"):
        return _flows_tool(args)
    if args.command == "flows" and args.flows_command in ("publish", "diff"):
        return _flows_release(args.flows_command, args.path)
    if args.command == "fake-graph":
        from bot import fake_graph

        fake_graph.main(["--port", str(args.port), "--print-url"])
        return 0
    return 2


def _dev_settings() -> Settings:
    import os

    env = dict(os.environ)
    env.setdefault("BOTTEGA_ENV", "dev")
    return Settings.from_env(env)


def _chat(channel: Channel, lang: str | None, user: str | None) -> int:
    import redis

    from bot import embedded_redis
    from bot.chat import DEFAULT_USERS, Chat, run_chat
    from bot.flows.loader import load_course
    from bot.flows.problems import FlowError

    settings = _dev_settings()
    try:
        course = load_course(settings.flows_dir)
    except FlowError as error:
        print(error, file=sys.stderr)
        return 1
    server = None if settings.redis_url else embedded_redis.start(settings.var_dir / "redis")
    url = settings.redis_url or server.url  # type: ignore[union-attr]
    client = redis.Redis.from_url(url)
    try:
        chat = Chat(client=client, course=course, settings=settings, channel=channel,
                    user_id=user or DEFAULT_USERS[channel], out=sys.stdout)

        def read_line() -> str | None:
            try:
                line = input("> " if sys.stdin.isatty() else "")
            except EOFError:
                return None
            return line

        run_chat(chat, read_line, lang=lang)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
        if server is not None:
            server.stop()  # we started it, we stop it (a running `make run` keeps its own)
    print("\nBye! Your progress is saved.")
    return 0


def _flows_check(path: str | None) -> int:
    from bot.flows.loader import load_course
    from bot.flows.problems import FlowError

    folder = Path(path) if path else _dev_settings().flows_dir
    try:
        course = load_course(folder)
    except FlowError as error:
        for problem in error.problems:
            print(problem)
        print(f"{len(error.problems)} problem(s) found.", file=sys.stderr)
        return 1
    from bot.flows.items import warnings

    for warning in warnings(course):
        print(warning)
    steps = sum(len(flow.steps) for flow in course.flows.values())
    print(f"OK: {len(course.flows)} flow(s), {steps} steps, {len(course.texts)} system texts in {folder}")
    return 0


def _flows_tool(args: argparse.Namespace) -> int:
    from bot import transcripts
    from bot.flows import graph, stats

    flows_dir = _dev_settings().flows_dir
    if args.flows_command == "test":
        return transcripts.main(args.paths, flows_dir=flows_dir)
    if args.flows_command == "graph":
        return graph.main([args.flow, str(flows_dir), "--format", args.format, "--lang", args.lang])
    return stats.main([args.path or str(flows_dir), *(["--json"] if args.json else [])])


def _flows_release(command: str, path: str | None) -> int:
    import redis

    from bot import embedded_redis, releases
    from bot.flows.loader import course_files
    from bot.flows.problems import FlowError

    settings = _dev_settings()
    folder = Path(path) if path else settings.flows_dir
    server = None if settings.redis_url else embedded_redis.start(settings.var_dir / "redis")
    client = redis.Redis.from_url(settings.redis_url or server.url)  # type: ignore[union-attr]
    try:
        files = course_files(folder)
        if command == "publish":
            published = releases.publish(client, files, folder=str(folder))
            if published.unchanged:
                print(f"Nothing to publish: release {published.release} is already this folder.")
            else:
                print(f"Published release {published.release}; changed modules: "
                      f"{', '.join(published.changed) or 'none'}. Every process serves it from its next message.")
            return 0
        report = releases.diff(client, files, folder=str(folder))
        print(releases.describe_diff(report))
        return 0
    except FlowError as error:
        for problem in error.problems:
            print(problem)
        print(f"{len(error.problems)} problem(s): nothing was published.", file=sys.stderr)
        return 1
    finally:
        client.close()
        if server is not None and server.process is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
