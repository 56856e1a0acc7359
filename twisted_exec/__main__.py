from twisted_exec.executor.options import main

main()
