from bugster_step.cli import main

main()
