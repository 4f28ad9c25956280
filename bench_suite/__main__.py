from bench_suite.cli.app import main

main()
