from twisted_exec.options import main

main()
