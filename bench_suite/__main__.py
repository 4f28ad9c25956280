from bench_suite.cli import main

main()
