"""One contender of agentry's peers benchmark, in Python:

    python driver.py --framework langgraph|openai-agents --workload a|b|c|d \
        --url http://127.0.0.1:PORT/v1 --repeat N [--concurrency C]

Builds the framework's own agent over the same simulated model (agentry sim-server, an
OpenAI-compatible endpoint) and the same tools as every contender: `lookup(topic)`, which
sleeps 100-500 ms (seeded by the topic) and returns a number, and `compute(expression)`.
Runs the workload's task N times one after another (or C at once for workload d) and
prints one JSON line: each task's latency, the CPU seconds the process spent on the
workload, its peak and starting resident memory, and the answers.
"""

import argparse
import asyncio
import json
import re
import resource
import sys
import time

TASKS = {
    "a": "parallelqa: what is the sum of the values of alpha, beta, gamma and delta?",
    "b": "fanout: what are the values of t1 to t8?",
    "c": "chain: follow the chain of lookups from start, four steps.",
    "d": "parallelqa: what is the sum of the values of alpha, beta, gamma and delta?",
}
INSTRUCTIONS = "Answer with the tools: lookup gives a topic's value, compute evaluates arithmetic."


def fnv1a(text: str) -> int:
    h = 0xCBF29CE484222325
    for b in text.encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


async def lookup(topic: str) -> str:
    """Looks up a topic's value (a number)."""
    h = fnv1a(topic)
    await asyncio.sleep((100 + h % 401) / 1000)
    return str((h >> 20) % 100)


def compute(expression: str) -> str:
    """Evaluates an arithmetic expression of numbers, + - * / and parentheses."""
    if not re.fullmatch(r"[0-9.+\-*/() ]+", expression):
        return "error: not arithmetic"
    value = eval(expression, {"__builtins__": {}})  # noqa: S307 - digits and operators only
    return str(int(value) if float(value).is_integer() else value)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def langgraph_agent(url: str):
    from langchain_core.tools import StructuredTool
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent

    model = ChatOpenAI(model="sim", base_url=url, api_key="sim", max_retries=0, timeout=120)
    tools = [
        StructuredTool.from_function(coroutine=lookup, name="lookup", description=lookup.__doc__),
        StructuredTool.from_function(func=compute, name="compute", description=compute.__doc__),
    ]
    agent = create_react_agent(model, tools, prompt=INSTRUCTIONS)

    async def run(task: str) -> str:
        out = await agent.ainvoke({"messages": [("user", task)]}, {"recursion_limit": 20})
        return out["messages"][-1].content

    return run


def openai_agents_agent(url: str):
    from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=url, api_key="sim", max_retries=0, timeout=120)
    agent = Agent(
        name="peer",
        instructions=INSTRUCTIONS,
        tools=[function_tool(lookup), function_tool(compute)],
        model=OpenAIChatCompletionsModel(model="sim", openai_client=client),
    )

    async def run(task: str) -> str:
        result = await Runner.run(agent, task, max_turns=10)
        return str(result.final_output)

    return run


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--framework", required=True, choices=["langgraph", "openai-agents"])
    p.add_argument("--workload", required=True, choices=list(TASKS))
    p.add_argument("--url", required=True)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=1)
    args = p.parse_args()
    run = (langgraph_agent if args.framework == "langgraph" else openai_agents_agent)(args.url)
    task = TASKS[args.workload]
    await run(task)  # warm-up: imports, connections
    rss_before = rss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    latencies, answers = [], []

    async def timed() -> None:
        t = time.perf_counter()
        answers.append(await run(task))
        latencies.append((time.perf_counter() - t) * 1000)

    wall = time.perf_counter()
    if args.concurrency > 1:
        for _ in range(args.repeat):
            await asyncio.gather(*(timed() for _ in range(args.concurrency)))
    else:
        for _ in range(args.repeat):
            await timed()
    wall = time.perf_counter() - wall
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "latencies_ms": latencies,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime - cpu0,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "rss_before_mb": rss_before,
        "answers": sorted(set(answers))[:5],
    }))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as e:  # reported in the table, the rest of the benchmark goes on
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
