
var loadWASM = (() => {
  var _scriptDir = import.meta.url;
  
  return (
function(loadWASM) {
  loadWASM = loadWASM || {};

function GROWABLE_HEAP_I8(){if(wasmMemory.buffer!=buffer){updateGlobalBufferAndViews(wasmMemory.buffer)}return HEAP8}function GROWABLE_HEAP_U8(){if(wasmMemory.buffer!=buffer){updateGlobalBufferAndViews(wasmMemory.buffer)}return HEAPU8}function GROWABLE_HEAP_I32(){if(wasmMemory.buffer!=buffer){updateGlobalBufferAndViews(wasmMemory.buffer)}return HEAP32}function GROWABLE_HEAP_F64(){if(wasmMemory.buffer!=buffer){updateGlobalBufferAndViews(wasmMemory.buffer)}return HEAPF64}var Module=typeof loadWASM!="undefined"?loadWASM:{};var readyPromiseResolve,readyPromiseReject;Module["ready"]=new Promise(function(resolve,reject){readyPromiseResolve=resolve;readyPromiseReject=reject});var moduleOverrides=Object.assign({},Module);var arguments_=[];var thisProgram="./this.program";var quit_=(status,toThrow)=>{throw toThrow};var ENVIRONMENT_IS_WEB=typeof window=="object";var ENVIRONMENT_IS_WORKER=typeof importScripts=="function";var ENVIRONMENT_IS_NODE=typeof process=="object"&&typeof process.versions=="object"&&typeof process.versions.node=="string";var ENVIRONMENT_IS_PTHREAD=Module["ENVIRONMENT_IS_PTHREAD"]||false;var scriptDirectory="";function locateFile(path){if(Module["locateFile"]){return Module["locateFile"](path,scriptDirectory)}return scriptDirectory+path}var read_,readAsync,readBinary,setWindowTitle;function logExceptionOnExit(e){if(e instanceof ExitStatus)return;let toLog=e;err("exiting due to exception: "+toLog)}var fs;var nodePath;var requireNodeFS;if(ENVIRONMENT_IS_NODE){if(ENVIRONMENT_IS_WORKER){scriptDirectory=require("path").dirname(scriptDirectory)+"/"}else{scriptDirectory=__dirname+"/"}requireNodeFS=(()=>{if(!nodePath){fs=require("fs");nodePath=require("path")}});read_=function shell_read(filename,binary){requireNodeFS();filename=nodePath["normalize"](filename);return fs.readFileSync(filename,binary?undefined:"utf8")};readBinary=(filename=>{var ret=read_(filename,true);if(!ret.buffer){ret=new Uint8Array(ret)}return ret});readAsync=((filename,onload,onerror)=>{requireNodeFS();filename=nodePath["normalize"](filename);fs.readFile(filename,function(err,data){if(err)onerror(err);else onload(data.buffer)})});if(process["argv"].length>1){thisProgram=process["argv"][1].replace(/\\/g,"/")}arguments_=process["argv"].slice(2);process["on"]("uncaughtException",function(ex){if(!(ex instanceof ExitStatus)){throw ex}});process["on"]("unhandledRejection",function(reason){throw reason});quit_=((status,toThrow)=>{if(keepRuntimeAlive()){process["exitCode"]=status;throw toThrow}logExceptionOnExit(toThrow);process["exit"](status)});Module["inspect"]=function(){return"[Emscripten Module object]"};let nodeWorkerThreads;try{nodeWorkerThreads=require("worker_threads")}catch(e){console.error('The "worker_threads" module is not supported in this node.js build - perhaps a newer version is needed?');throw e}global.Worker=nodeWorkerThreads.Worker}else if(ENVIRONMENT_IS_WEB||ENVIRONMENT_IS_WORKER){if(ENVIRONMENT_IS_WORKER){scriptDirectory=self.location.href}else if(typeof document!="undefined"&&document.currentScript){scriptDirectory=document.currentScript.src}if(_scriptDir){scriptDirectory=_scriptDir}if(scriptDirectory.indexOf("blob:")!==0){scriptDirectory=scriptDirectory.substr(0,scriptDirectory.replace(/[?#].*/,"").lastIndexOf("/")+1)}else{scriptDirectory=""}if(!ENVIRONMENT_IS_NODE){read_=(url=>{var xhr=new XMLHttpRequest;xhr.open("GET",url,false);xhr.send(null);return xhr.responseText});if(ENVIRONMENT_IS_WORKER){readBinary=(url=>{var xhr=new XMLHttpRequest;xhr.open("GET",url,false);xhr.responseType="arraybuffer";xhr.send(null);return new Uint8Array(xhr.response)})}readAsync=((url,onload,onerror)=>{var xhr=new XMLHttpRequest;xhr.open("GET",url,true);xhr.responseType="arraybuffer";xhr.onload=(()=>{if(xhr.status==200||xhr.status==0&&xhr.response){onload(xhr.response);return}onerror()});xhr.onerror=onerror;xhr.send(null)})}setWindowTitle=(title=>document.title=title)}else{}if(ENVIRONMENT_IS_NODE){if(typeof performance=="undefined"){global.performance=require("perf_hooks").performance}}var defaultPrint=console.log.bind(console);var defaultPrintErr=console.warn.bind(console);if(ENVIRONMENT_IS_NODE){requireNodeFS();defaultPrint=(str=>fs.writeSync(1,str+"\n"));defaultPrintErr=(str=>fs.writeSync(2,str+"\n"))}var out=Module["print"]||defaultPrint;var err=Module["printErr"]||defaultPrintErr;Object.assign(Module,moduleOverrides);moduleOverrides=null;if(Module["arguments"])arguments_=Module["arguments"];if(Module["thisProgram"])thisProgram=Module["thisProgram"];if(Module["quit"])quit_=Module["quit"];function warnOnce(text){if(!warnOnce.shown)warnOnce.shown={};if(!warnOnce.shown[text]){warnOnce.shown[text]=1;err(text)}}var Atomics_load=Atomics.load;var Atomics_store=Atomics.store;var Atomics_compareExchange=Atomics.compareExchange;var wasmBinary;if(Module["wasmBinary"])wasmBinary=Module["wasmBinary"];var noExitRuntime=Module["noExitRuntime"]||true;if(typeof WebAssembly!="object"){abort("no native wasm support detected")}var wasmMemory;var wasmModule;var ABORT=false;var EXITSTATUS;function TextDecoderWrapper(encoding){var textDecoder=new TextDecoder(encoding);this.decode=(data=>{if(data.buffer instanceof SharedArrayBuffer){data=new Uint8Array(data)}return textDecoder.decode.call(textDecoder,data)})}var UTF8Decoder=typeof TextDecoder!="undefined"?new TextDecoderWrapper("utf8"):undefined;function UTF8ArrayToString(heap,idx,maxBytesToRead){idx>>>=0;var endIdx=idx+maxBytesToRead;var endPtr=idx;while(heap[endPtr>>>0]&&!(endPtr>=endIdx))++endPtr;if(endPtr-idx>16&&heap.subarray&&UTF8Decoder){return UTF8Decoder.decode(heap.subarray(idx>>>0,endPtr>>>0))}else{var str="";while(idx<endPtr){var u0=heap[idx++>>>0];if(!(u0&128)){str+=String.fromCharCode(u0);continue}var u1=heap[idx++>>>0]&63;if((u0&224)==192){str+=String.fromCharCode((u0&31)<<6|u1);continue}var u2=heap[idx++>>>0]&63;if((u0&240)==224){u0=(u0&15)<<12|u1<<6|u2}else{u0=(u0&7)<<18|u1<<12|u2<<6|heap[idx++>>>0]&63}if(u0<65536){str+=String.fromCharCode(u0)}else{var ch=u0-65536;str+=String.fromCharCode(55296|ch>>10,56320|ch&1023)}}}return str}function UTF8ToString(ptr,maxBytesToRead){ptr>>>=0;return ptr?UTF8ArrayToString(GROWABLE_HEAP_U8(),ptr,maxBytesToRead):""}function stringToUTF8Array(str,heap,outIdx,maxBytesToWrite){outIdx>>>=0;if(!(maxBytesToWrite>0))return 0;var startIdx=outIdx;var endIdx=outIdx+maxBytesToWrite-1;for(var i=0;i<str.length;++i){var u=str.charCodeAt(i);if(u>=55296&&u<=57343){var u1=str.charCodeAt(++i);u=65536+((u&1023)<<10)|u1&1023}if(u<=127){if(outIdx>=endIdx)break;heap[outIdx++>>>0]=u}else if(u<=2047){if(outIdx+1>=endIdx)break;heap[outIdx++>>>0]=192|u>>6;heap[outIdx++>>>0]=128|u&63}else if(u<=65535){if(outIdx+2>=endIdx)break;heap[outIdx++>>>0]=224|u>>12;heap[outIdx++>>>0]=128|u>>6&63;heap[outIdx++>>>0]=128|u&63}else{if(outIdx+3>=endIdx)break;heap[outIdx++>>>0]=240|u>>18;heap[outIdx++>>>0]=128|u>>12&63;heap[outIdx++>>>0]=128|u>>6&63;heap[outIdx++>>>0]=128|u&63}}heap[outIdx>>>0]=0;return outIdx-startIdx}function stringToUTF8(str,outPtr,maxBytesToWrite){return stringToUTF8Array(str,GROWABLE_HEAP_U8(),outPtr,maxBytesToWrite)}function lengthBytesUTF8(str){var len=0;for(var i=0;i<str.length;++i){var u=str.charCodeAt(i);if(u>=55296&&u<=57343)u=65536+((u&1023)<<10)|str.charCodeAt(++i)&1023;if(u<=127)++len;else if(u<=2047)len+=2;else if(u<=65535)len+=3;else len+=4}return len}var UTF16Decoder=typeof TextDecoder!="undefined"?new TextDecoderWrapper("utf-16le"):undefined;function writeAsciiToMemory(str,buffer,dontAddNull){for(var i=0;i<str.length;++i){GROWABLE_HEAP_I8()[buffer++>>>0]=str.charCodeAt(i)}if(!dontAddNull)GROWABLE_HEAP_I8()[buffer>>>0]=0}var buffer,HEAP8,HEAPU8,HEAP16,HEAPU16,HEAP32,HEAPU32,HEAPF32,HEAP64,HEAPU64,HEAPF64;if(ENVIRONMENT_IS_PTHREAD){buffer=Module["buffer"]}function updateGlobalBufferAndViews(buf){buffer=buf;Module["HEAP8"]=HEAP8=new Int8Array(buf);Module["HEAP16"]=HEAP16=new Int16Array(buf);Module["HEAP32"]=HEAP32=new Int32Array(buf);Module["HEAPU8"]=HEAPU8=new Uint8Array(buf);Module["HEAPU16"]=HEAPU16=new Uint16Array(buf);Module["HEAPU32"]=HEAPU32=new Uint32Array(buf);Module["HEAPF32"]=HEAPF32=new Float32Array(buf);Module["HEAPF64"]=HEAPF64=new Float64Array(buf);Module["HEAP64"]=HEAP64=new BigInt64Array(buf);Module["HEAPU64"]=HEAPU64=new BigUint64Array(buf)}var INITIAL_MEMORY=Module["INITIAL_MEMORY"]||16777216;if(ENVIRONMENT_IS_PTHREAD){wasmMemory=Module["wasmMemory"];buffer=Module["buffer"]}else{if(Module["wasmMemory"]){wasmMemory=Module["wasmMemory"]}else{wasmMemory=new WebAssembly.Memory({"initial":INITIAL_MEMORY/65536,"maximum":4294967296/65536,"shared":true});if(!(wasmMemory.buffer instanceof SharedArrayBuffer)){err("requested a shared WebAssembly.Memory but the returned buffer is not a SharedArrayBuffer, indicating that while the browser has SharedArrayBuffer it does not have WebAssembly threads support - you may need to set a flag");if(ENVIRONMENT_IS_NODE){console.log("(on node you may need: --experimental-wasm-threads --experimental-wasm-bulk-memory and also use a recent version)")}throw Error("bad memory")}}}if(wasmMemory){buffer=wasmMemory.buffer}INITIAL_MEMORY=buffer.byteLength;updateGlobalBufferAndViews(buffer);var wasmTable;var __ATPRERUN__=[];var __ATINIT__=[];var __ATEXIT__=[];var __ATPOSTRUN__=[];var runtimeInitialized=false;var runtimeExited=false;var runtimeKeepaliveCounter=0;function keepRuntimeAlive(){return noExitRuntime||runtimeKeepaliveCounter>0}function preRun(){if(Module["preRun"]){if(typeof Module["preRun"]=="function")Module["preRun"]=[Module["preRun"]];while(Module["preRun"].length){addOnPreRun(Module["preRun"].shift())}}callRuntimeCallbacks(__ATPRERUN__)}function initRuntime(){runtimeInitialized=true;if(ENVIRONMENT_IS_PTHREAD)return;callRuntimeCallbacks(__ATINIT__)}function exitRuntime(){if(ENVIRONMENT_IS_PTHREAD)return;PThread.terminateAllThreads();runtimeExited=true}function postRun(){if(ENVIRONMENT_IS_PTHREAD)return;if(Module["postRun"]){if(typeof Module["postRun"]=="function")Module["postRun"]=[Module["postRun"]];while(Module["postRun"].length){addOnPostRun(Module["postRun"].shift())}}callRuntimeCallbacks(__ATPOSTRUN__)}function addOnPreRun(cb){__ATPRERUN__.unshift(cb)}function addOnInit(cb){__ATINIT__.unshift(cb)}function addOnPostRun(cb){__ATPOSTRUN__.unshift(cb)}var runDependencies=0;var runDependencyWatcher=null;var dependenciesFulfilled=null;function addRunDependency(id){runDependencies++;if(Module["monitorRunDependencies"]){Module["monitorRunDependencies"](runDependencies)}}function removeRunDependency(id){runDependencies--;if(Module["monitorRunDependencies"]){Module["monitorRunDependencies"](runDependencies)}if(runDependencies==0){if(runDependencyWatcher!==null){clearInterval(runDependencyWatcher);runDependencyWatcher=null}if(dependenciesFulfilled){var callback=dependenciesFulfilled;dependenciesFulfilled=null;callback()}}}Module["preloadedImages"]={};Module["preloadedAudios"]={};function abort(what){if(ENVIRONMENT_IS_PTHREAD){postMessage({"cmd":"onAbort","arg":what})}else{if(Module["onAbort"]){Module["onAbort"](what)}}what="Aborted("+what+")";err(what);ABORT=true;EXITSTATUS=1;what+=". Build with -s ASSERTIONS=1 for more info.";var e=new WebAssembly.RuntimeError(what);readyPromiseReject(e);throw e}var dataURIPrefix="data:application/octet-stream;base64,";function isDataURI(filename){return filename.startsWith(dataURIPrefix)}function isFileURI(filename){return filename.startsWith("file://")}var wasmBinaryFile;if(Module["locateFile"]){wasmBinaryFile="llm.wasm";if(!isDataURI(wasmBinaryFile)){wasmBinaryFile=locateFile(wasmBinaryFile)}}else{wasmBinaryFile=new URL("llm.wasm",import.meta.url).toString()}function getBinary(file){try{if(file==wasmBinaryFile&&wasmBinary){return new Uint8Array(wasmBinary)}if(readBinary){return readBinary(file)}else{throw"both async and sync fetching of the wasm failed"}}catch(err){abort(err)}}function getBinaryPromise(){if(!wasmBinary&&(ENVIRONMENT_IS_WEB||ENVIRONMENT_IS_WORKER)){if(typeof fetch=="function"&&!isFileURI(wasmBinaryFile)){return fetch(wasmBinaryFile,{credentials:"same-origin"}).then(function(response){if(!response["ok"]){throw"failed to load wasm binary file at '"+wasmBinaryFile+"'"}return response["arrayBuffer"]()}).catch(function(){return getBinary(wasmBinaryFile)})}else{if(readAsync){return new Promise(function(resolve,reject){readAsync(wasmBinaryFile,function(response){resolve(new Uint8Array(response))},reject)})}}}return Promise.resolve().then(function(){return getBinary(wasmBinaryFile)})}function createWasm(){var info={"a":asmLibraryArg};function receiveInstance(instance,module){var exports=instance.exports;Module["asm"]=exports;registerTlsInit(Module["asm"]["bb"]);wasmTable=Module["asm"]["ab"];addOnInit(Module["asm"]["y"]);wasmModule=module;if(!ENVIRONMENT_IS_PTHREAD){var numWorkersToLoad=PThread.unusedWorkers.length;PThread.unusedWorkers.forEach(function(w){PThread.loadWasmModuleToWorker(w,function(){if(!--numWorkersToLoad)removeRunDependency("wasm-instantiate")})})}}if(!ENVIRONMENT_IS_PTHREAD){addRunDependency("wasm-instantiate")}function receiveInstantiationResult(result){receiveInstance(result["instance"],result["module"])}function instantiateArrayBuffer(receiver){return getBinaryPromise().then(function(binary){return WebAssembly.instantiate(binary,info)}).then(function(instance){return instance}).then(receiver,function(reason){err("failed to asynchronously prepare wasm: "+reason);abort(reason)})}function instantiateAsync(){if(!wasmBinary&&typeof WebAssembly.instantiateStreaming=="function"&&!isDataURI(wasmBinaryFile)&&!isFileURI(wasmBinaryFile)&&typeof fetch=="function"){return fetch(wasmBinaryFile,{credentials:"same-origin"}).then(function(response){var result=WebAssembly.instantiateStreaming(response,info);return result.then(receiveInstantiationResult,function(reason){err("wasm streaming compile failed: "+reason);err("falling back to ArrayBuffer instantiation");return instantiateArrayBuffer(receiveInstantiationResult)})})}else{return instantiateArrayBuffer(receiveInstantiationResult)}}if(Module["instantiateWasm"]){try{var exports=Module["instantiateWasm"](info,receiveInstance);return exports}catch(e){err("Module.instantiateWasm callback failed with error: "+e);return false}}instantiateAsync().catch(readyPromiseReject);return{}}var ASM_CONSTS={};function callRuntimeCallbacks(callbacks){while(callbacks.length>0){var callback=callbacks.shift();if(typeof callback=="function"){callback(Module);continue}var func=callback.func;if(typeof func=="number"){if(callback.arg===undefined){getWasmTableEntry(func)()}else{getWasmTableEntry(func)(callback.arg)}}else{func(callback.arg===undefined?null:callback.arg)}}}function withStackSave(f){var stack=stackSave();var ret=f();stackRestore(stack);return ret}function killThread(pthread_ptr){GROWABLE_HEAP_I32()[pthread_ptr>>>2]=0;var pthread=PThread.pthreads[pthread_ptr];delete PThread.pthreads[pthread_ptr];pthread.worker.terminate();__emscripten_thread_free_data(pthread_ptr);PThread.runningWorkers.splice(PThread.runningWorkers.indexOf(pthread.worker),1);pthread.worker.pthread=undefined}function cancelThread(pthread_ptr){var pthread=PThread.pthreads[pthread_ptr];pthread.worker.postMessage({"cmd":"cancel"})}function cleanupThread(pthread_ptr){var pthread=PThread.pthreads[pthread_ptr];if(pthread){GROWABLE_HEAP_I32()[pthread_ptr>>>2]=0;var worker=pthread.worker;PThread.returnWorkerToPool(worker)}}function _exit(status){exit(status)}function handleException(e){if(e instanceof ExitStatus||e=="unwind"){return EXITSTATUS}quit_(1,e)}var PThread={unusedWorkers:[],runningWorkers:[],tlsInitFunctions:[],init:function(){if(ENVIRONMENT_IS_PTHREAD){PThread.initWorker()}else{PThread.initMainThread()}},initMainThread:function(){var pthreadPoolSize=navigator.hardwareConcurrency;for(var i=0;i<pthreadPoolSize;++i){PThread.allocateUnusedWorker()}},initWorker:function(){noExitRuntime=false},pthreads:{},setExitStatus:function(status){EXITSTATUS=status},terminateAllThreads:function(){for(var t in PThread.pthreads){var pthread=PThread.pthreads[t];if(pthread&&pthread.worker){PThread.returnWorkerToPool(pthread.worker)}}for(var i=0;i<PThread.unusedWorkers.length;++i){var worker=PThread.unusedWorkers[i];worker.terminate()}PThread.unusedWorkers=[]},returnWorkerToPool:function(worker){PThread.runWithoutMainThreadQueuedCalls(function(){delete PThread.pthreads[worker.pthread.threadInfoStruct];PThread.unusedWorkers.push(worker);PThread.runningWorkers.splice(PThread.runningWorkers.indexOf(worker),1);__emscripten_thread_free_data(worker.pthread.threadInfoStruct);worker.pthread=undefined})},runWithoutMainThreadQueuedCalls:function(func){GROWABLE_HEAP_I32()[__emscripten_allow_main_runtime_queued_calls>>>2]=0;try{func()}finally{GROWABLE_HEAP_I32()[__emscripten_allow_main_runtime_queued_calls>>>2]=1}},receiveObjectTransfer:function(data){},threadInit:function(){for(var i in PThread.tlsInitFunctions){PThread.tlsInitFunctions[i]()}},loadWasmModuleToWorker:function(worker,onFinishedLoading){worker.onmessage=(e=>{var d=e["data"];var cmd=d["cmd"];if(worker.pthread)PThread.currentProxiedOperationCallerThread=worker.pthread.threadInfoStruct;if(d["targetThread"]&&d["targetThread"]!=_pthread_self()){var thread=PThread.pthreads[d.targetThread];if(thread){thread.worker.postMessage(d,d["transferList"])}else{err('Internal error! Worker sent a message "'+cmd+'" to target pthread '+d["targetThread"]+", but that thread no longer exists!")}PThread.currentProxiedOperationCallerThread=undefined;return}if(cmd==="processQueuedMainThreadWork"){_emscripten_main_thread_process_queued_calls()}else if(cmd==="spawnThread"){spawnThread(d)}else if(cmd==="cleanupThread"){cleanupThread(d["thread"])}else if(cmd==="killThread"){killThread(d["thread"])}else if(cmd==="cancelThread"){cancelThread(d["thread"])}else if(cmd==="loaded"){worker.loaded=true;if(onFinishedLoading)onFinishedLoading(worker);if(worker.runPthread){worker.runPthread();delete worker.runPthread}}else if(cmd==="print"){out("Thread "+d["threadId"]+": "+d["text"])}else if(cmd==="printErr"){err("Thread "+d["threadId"]+": "+d["text"])}else if(cmd==="alert"){alert("Thread "+d["threadId"]+": "+d["text"])}else if(d.target==="setimmediate"){worker.postMessage(d)}else if(cmd==="onAbort"){if(Module["onAbort"]){Module["onAbort"](d["arg"])}}else{err("worker sent an unknown command "+cmd)}PThread.currentProxiedOperationCallerThread=undefined});worker.onerror=(e=>{var message="worker sent an error!";err(message+" "+e.filename+":"+e.lineno+": "+e.message);throw e});if(ENVIRONMENT_IS_NODE){worker.on("message",function(data){worker.onmessage({data:data})});worker.on("error",function(e){worker.onerror(e)});worker.on("detachedExit",function(){})}worker.postMessage({"cmd":"load","urlOrBlob":Module["mainScriptUrlOrBlob"],"wasmMemory":wasmMemory,"wasmModule":wasmModule})},allocateUnusedWorker:function(){if(!Module["locateFile"]){PThread.unusedWorkers.push(new Worker(new URL("llm.worker.js",import.meta.url)));return}var pthreadMainJs=locateFile("llm.worker.js");PThread.unusedWorkers.push(new Worker(pthreadMainJs))},getNewWorker:function(){if(PThread.unusedWorkers.length==0){PThread.allocateUnusedWorker();PThread.loadWasmModuleToWorker(PThread.unusedWorkers[0])}return PThread.unusedWorkers.pop()}};function establishStackSpace(){var pthread_ptr=_pthread_self();var stackTop=GROWABLE_HEAP_I32()[pthread_ptr+44>>>2];var stackSize=GROWABLE_HEAP_I32()[pthread_ptr+48>>>2];var stackMax=stackTop-stackSize;_emscripten_stack_set_limits(stackTop,stackMax);stackRestore(stackTop)}Module["establishStackSpace"]=establishStackSpace;function exitOnMainThread(returnCode){if(ENVIRONMENT_IS_PTHREAD)return _emscripten_proxy_to_main_thread_js(1,0,returnCode);try{_exit(returnCode)}catch(e){handleException(e)}}var wasmTableMirror=[];function getWasmTableEntry(funcPtr){var func=wasmTableMirror[funcPtr];if(!func){if(funcPtr>=wasmTableMirror.length)wasmTableMirror.length=funcPtr+1;wasmTableMirror[funcPtr]=func=wasmTable.get(funcPtr)}return func}function invokeEntryPoint(ptr,arg){return getWasmTableEntry(ptr)(arg)}Module["invokeEntryPoint"]=invokeEntryPoint;function registerTlsInit(tlsInitFunc){PThread.tlsInitFunctions.push(tlsInitFunc)}function ___assert_fail(condition,filename,line,func){abort("Assertion failed: "+UTF8ToString(condition)+", at: "+[filename?UTF8ToString(filename):"unknown filename",line,func?UTF8ToString(func):"unknown function"])}var _emscripten_get_now;if(ENVIRONMENT_IS_NODE){_emscripten_get_now=(()=>{var t=process["hrtime"]();return t[0]*1e3+t[1]/1e6})}else if(ENVIRONMENT_IS_PTHREAD){_emscripten_get_now=(()=>performance.now()-Module["__performance_now_clock_drift"])}else _emscripten_get_now=(()=>performance.now());var _emscripten_get_now_is_monotonic=true;function setErrNo(value){GROWABLE_HEAP_I32()[___errno_location()>>>2]=value;return value}function _clock_gettime(clk_id,tp){var now;if(clk_id===0){now=Date.now()}else if((clk_id===1||clk_id===4)&&_emscripten_get_now_is_monotonic){now=_emscripten_get_now()}else{setErrNo(28);return-1}GROWABLE_HEAP_I32()[tp>>>2]=now/1e3|0;GROWABLE_HEAP_I32()[tp+4>>>2]=now%1e3*1e3*1e3|0;return 0}function ___emscripten_init_main_thread_js(tb){__emscripten_thread_init(tb,!ENVIRONMENT_IS_WORKER,1,!ENVIRONMENT_IS_WEB);PThread.threadInit()}function ___emscripten_thread_cleanup(thread){if(!ENVIRONMENT_IS_PTHREAD)cleanupThread(thread);else postMessage({"cmd":"cleanupThread","thread":thread})}function spawnThread(threadParams){var worker=PThread.getNewWorker();if(!worker){return 6}PThread.runningWorkers.push(worker);var pthread=PThread.pthreads[threadParams.pthread_ptr]={worker:worker,threadInfoStruct:threadParams.pthread_ptr};worker.pthread=pthread;var msg={"cmd":"run","start_routine":threadParams.startRoutine,"arg":threadParams.arg,"threadInfoStruct":threadParams.pthread_ptr};worker.runPthread=(()=>{msg.time=performance.now();worker.postMessage(msg,threadParams.transferList)});if(worker.loaded){worker.runPthread();delete worker.runPthread}return 0}function ___pthread_create_js(pthread_ptr,attr,start_routine,arg){if(typeof SharedArrayBuffer=="undefined"){err("Current environment does not support SharedArrayBuffer, pthreads are not available!");return 6}var transferList=[];var error=0;if(ENVIRONMENT_IS_PTHREAD&&(transferList.length===0||error)){return _emscripten_sync_run_in_main_thread_4(687865856,pthread_ptr,attr,start_routine,arg)}if(error)return error;var threadParams={startRoutine:start_routine,pthread_ptr:pthread_ptr,arg:arg,transferList:transferList};if(ENVIRONMENT_IS_PTHREAD){threadParams.cmd="spawnThread";postMessage(threadParams,transferList);return 0}return spawnThread(threadParams)}function __emscripten_default_pthread_stack_size(){return 2097152}function __emscripten_notify_thread_queue(targetThreadId,mainThreadId){if(targetThreadId==mainThreadId){postMessage({"cmd":"processQueuedMainThreadWork"})}else if(ENVIRONMENT_IS_PTHREAD){postMessage({"targetThread":targetThreadId,"cmd":"processThreadQueue"})}else{var pthread=PThread.pthreads[targetThreadId];var worker=pthread&&pthread.worker;if(!worker){return}worker.postMessage({"cmd":"processThreadQueue"})}return 1}function _emscripten_check_blocking_allowed(){if(ENVIRONMENT_IS_NODE)return;if(ENVIRONMENT_IS_WORKER)return;warnOnce("Blocking on the main thread is very dangerous, see https://emscripten.org/docs/porting/pthreads.html#blocking-on-the-main-browser-thread")}function _emscripten_memcpy_big(dest,src,num){GROWABLE_HEAP_U8().copyWithin(dest>>>0,src>>>0,src+num>>>0)}function _emscripten_num_logical_cores(){if(ENVIRONMENT_IS_NODE)return require("os").cpus().length;return navigator["hardwareConcurrency"]}function _emscripten_proxy_to_main_thread_js(index,sync){var numCallArgs=arguments.length-2;var outerArgs=arguments;return withStackSave(function(){var serializedNumCallArgs=numCallArgs*2;var args=stackAlloc(serializedNumCallArgs*8);var b=args>>3;for(var i=0;i<numCallArgs;i++){var arg=outerArgs[2+i];if(typeof arg=="bigint"){HEAP64[b+2*i]=BigInt(1);HEAP64[b+2*i+1]=arg}else{HEAP64[b+2*i]=BigInt(0);GROWABLE_HEAP_F64()[b+2*i+1>>>0]=arg}}return _emscripten_run_in_main_runtime_thread_js(index,serializedNumCallArgs,args,sync)})}var _emscripten_receive_on_main_thread_js_callArgs=[];function _emscripten_receive_on_main_thread_js(index,numCallArgs,args){numCallArgs/=2;_emscripten_receive_on_main_thread_js_callArgs.length=numCallArgs;var b=args>>3;for(var i=0;i<numCallArgs;i++){if(HEAP64[b+2*i]){_emscripten_receive_on_main_thread_js_callArgs[i]=HEAP64[b+2*i+1]}else{_emscripten_receive_on_main_thread_js_callArgs[i]=GROWABLE_HEAP_F64()[b+2*i+1>>>0]}}var isEmAsmConst=index<0;var func=!isEmAsmConst?proxiedFunctionTable[index]:ASM_CONSTS[-index-1];return func.apply(null,_emscripten_receive_on_main_thread_js_callArgs)}function _emscripten_get_heap_max(){return 4294901760}function emscripten_realloc_buffer(size){try{wasmMemory.grow(size-buffer.byteLength+65535>>>16);updateGlobalBufferAndViews(wasmMemory.buffer);return 1}catch(e){}}function _emscripten_resize_heap(requestedSize){var oldSize=GROWABLE_HEAP_U8().length;requestedSize=requestedSize>>>0;if(requestedSize<=oldSize){return false}var maxHeapSize=_emscripten_get_heap_max();if(requestedSize>maxHeapSize){return false}let alignUp=(x,multiple)=>x+(multiple-x%multiple)%multiple;for(var cutDown=1;cutDown<=4;cutDown*=2){var overGrownHeapSize=oldSize*(1+.2/cutDown);overGrownHeapSize=Math.min(overGrownHeapSize,requestedSize+100663296);var newSize=Math.min(maxHeapSize,alignUp(Math.max(requestedSize,overGrownHeapSize),65536));var replacement=emscripten_realloc_buffer(newSize);if(replacement){return true}}return false}var JSEvents={inEventHandler:0,removeAllEventListeners:function(){for(var i=JSEvents.eventHandlers.length-1;i>=0;--i){JSEvents._removeHandler(i)}JSEvents.eventHandlers=[];JSEvents.deferredCalls=[]},registerRemoveEventListeners:function(){if(!JSEvents.removeEventListenersRegistered){__ATEXIT__.push(JSEvents.removeAllEventListeners);JSEvents.removeEventListenersRegistered=true}},deferredCalls:[],deferCall:function(targetFunction,precedence,argsList){function arraysHaveEqualContent(arrA,arrB){if(arrA.length!=arrB.length)return false;for(var i in arrA){if(arrA[i]!=arrB[i])return false}return true}for(var i in JSEvents.deferredCalls){var call=JSEvents.deferredCalls[i];if(call.targetFunction==targetFunction&&arraysHaveEqualContent(call.argsList,argsList)){return}}JSEvents.deferredCalls.push({targetFunction:targetFunction,precedence:precedence,argsList:argsList});JSEvents.deferredCalls.sort(function(x,y){return x.precedence<y.precedence})},removeDeferredCalls:function(targetFunction){for(var i=0;i<JSEvents.deferredCalls.length;++i){if(JSEvents.deferredCalls[i].targetFunction==targetFunction){JSEvents.deferredCalls.splice(i,1);--i}}},canPerformEventHandlerRequests:function(){return JSEvents.inEventHandler&&JSEvents.currentEventHandler.allowsDeferredCalls},runDeferredCalls:function(){if(!JSEvents.canPerformEventHandlerRequests()){return}for(var i=0;i<JSEvents.deferredCalls.length;++i){var call=JSEvents.deferredCalls[i];JSEvents.deferredCalls.splice(i,1);--i;call.targetFunction.apply(null,call.argsList)}},eventHandlers:[],removeAllHandlersOnTarget:function(target,eventTypeString){for(var i=0;i<JSEvents.eventHandlers.length;++i){if(JSEvents.eventHandlers[i].target==target&&(!eventTypeString||eventTypeString==JSEvents.eventHandlers[i].eventTypeString)){JSEvents._removeHandler(i--)}}},_removeHandler:function(i){var h=JSEvents.eventHandlers[i];h.target.removeEventListener(h.eventTypeString,h.eventListenerFunc,h.useCapture);JSEvents.eventHandlers.splice(i,1)},registerOrRemoveHandler:function(eventHandler){var jsEventHandler=function jsEventHandler(event){++JSEvents.inEventHandler;JSEvents.currentEventHandler=eventHandler;JSEvents.runDeferredCalls();eventHandler.handlerFunc(event);JSEvents.runDeferredCalls();--JSEvents.inEventHandler};if(eventHandler.callbackfunc){eventHandler.eventListenerFunc=jsEventHandler;eventHandler.target.addEventListener(eventHandler.eventTypeString,jsEventHandler,eventHandler.useCapture);JSEvents.eventHandlers.push(eventHandler);JSEvents.registerRemoveEventListeners()}else{for(var i=0;i<JSEvents.eventHandlers.length;++i){if(JSEvents.eventHandlers[i].target==eventHandler.target&&JSEvents.eventHandlers[i].eventTypeString==eventHandler.eventTypeString){JSEvents._removeHandler(i--)}}}},queueEventHandlerOnThread_iiii:function(targetThread,eventHandlerFunc,eventTypeId,eventData,userData){withStackSave(function(){var varargs=stackAlloc(12);GROWABLE_HEAP_I32()[varargs>>>2]=eventTypeId;GROWABLE_HEAP_I32()[varargs+4>>>2]=eventData;GROWABLE_HEAP_I32()[varargs+8>>>2]=userData;_emscripten_dispatch_to_thread_(targetThread,637534208,eventHandlerFunc,eventData,varargs)})},getTargetThreadForEventCallback:function(targetThread){switch(targetThread){case 1:return 0;case 2:return PThread.currentProxiedOperationCallerThread;default:return targetThread}},getNodeNameForTarget:function(target){if(!target)return"";if(target==window)return"#window";if(target==screen)return"#screen";return target&&target.nodeName?target.nodeName:""},fullscreenEnabled:function(){return document.fullscreenEnabled||document.webkitFullscreenEnabled}};function stringToNewUTF8(jsString){var length=lengthBytesUTF8(jsString)+1;var cString=_malloc(length);stringToUTF8(jsString,cString,length);return cString}function _emscripten_set_offscreencanvas_size_on_target_thread_js(targetThread,targetCanvas,width,height){withStackSave(function(){var varargs=stackAlloc(12);var targetCanvasPtr=0;if(targetCanvas){targetCanvasPtr=stringToNewUTF8(targetCanvas)}GROWABLE_HEAP_I32()[varargs>>>2]=targetCanvasPtr;GROWABLE_HEAP_I32()[varargs+4>>>2]=width;GROWABLE_HEAP_I32()[varargs+8>>>2]=height;_emscripten_dispatch_to_thread_(targetThread,657457152,0,targetCanvasPtr,varargs)})}function _emscripten_set_offscreencanvas_size_on_target_thread(targetThread,targetCanvas,width,height){targetCanvas=targetCanvas?UTF8ToString(targetCanvas):"";_emscripten_set_offscreencanvas_size_on_target_thread_js(targetThread,targetCanvas,width,height)}function maybeCStringToJsString(cString){return cString>2?UTF8ToString(cString):cString}var specialHTMLTargets=[0,typeof document!="undefined"?document:0,typeof window!="undefined"?window:0];function findEventTarget(target){target=maybeCStringToJsString(target);var domElement=specialHTMLTargets[target]||(typeof document!="undefined"?document.querySelector(target):undefined);return domElement}function findCanvasEventTarget(target){return findEventTarget(target)}function _emscripten_set_canvas_element_size_calling_thread(target,width,height){var canvas=findCanvasEventTarget(target);if(!canvas)return-4;if(canvas.canvasSharedPtr){GROWABLE_HEAP_I32()[canvas.canvasSharedPtr>>>2]=width;GROWABLE_HEAP_I32()[canvas.canvasSharedPtr+4>>>2]=height}if(canvas.offscreenCanvas||!canvas.controlTransferredOffscreen){if(canvas.offscreenCanvas)canvas=canvas.offscreenCanvas;var autoResizeViewport=false;if(canvas.GLctxObject&&canvas.GLctxObject.GLctx){var prevViewport=canvas.GLctxObject.GLctx.getParameter(2978);autoResizeViewport=prevViewport[0]===0&&prevViewport[1]===0&&prevViewport[2]===canvas.width&&prevViewport[3]===canvas.height}canvas.width=width;canvas.height=height;if(autoResizeViewport){canvas.GLctxObject.GLctx.viewport(0,0,width,height)}}else if(canvas.canvasSharedPtr){var targetThread=GROWABLE_HEAP_I32()[canvas.canvasSharedPtr+8>>>2];_emscripten_set_offscreencanvas_size_on_target_thread(targetThread,target,width,height);return 1}else{return-4}return 0}function _emscripten_set_canvas_element_size_main_thread(target,width,height){if(ENVIRONMENT_IS_PTHREAD)return _emscripten_proxy_to_main_thread_js(2,1,target,width,height);return _emscripten_set_canvas_element_size_calling_thread(target,width,height)}function _emscripten_set_canvas_element_size(target,width,height){var canvas=findCanvasEventTarget(target);if(canvas){return _emscripten_set_canvas_element_size_calling_thread(target,width,height)}else{return _emscripten_set_canvas_element_size_main_thread(target,width,height)}}function _emscripten_unwind_to_js_event_loop(){throw"unwind"}function __webgl_enable_ANGLE_instanced_arrays(ctx){var ext=ctx.getExtension("ANGLE_instanced_arrays");if(ext){ctx["vertexAttribDivisor"]=function(index,divisor){ext["vertexAttribDivisorANGLE"](index,divisor)};ctx["drawArraysInstanced"]=function(mode,first,count,primcount){ext["drawArraysInstancedANGLE"](mode,first,count,primcount)};ctx["drawElementsInstanced"]=function(mode,count,type,indices,primcount){ext["drawElementsInstancedANGLE"](mode,count,type,indices,primcount)};return 1}}function __webgl_enable_OES_vertex_array_object(ctx){var ext=ctx.getExtension("OES_vertex_array_object");if(ext){ctx["createVertexArray"]=function(){return ext["createVertexArrayOES"]()};ctx["deleteVertexArray"]=function(vao){ext["deleteVertexArrayOES"](vao)};ctx["bindVertexArray"]=function(vao){ext["bindVertexArrayOES"](vao)};ctx["isVertexArray"]=function(vao){return ext["isVertexArrayOES"](vao)};return 1}}function __webgl_enable_WEBGL_draw_buffers(ctx){var ext=ctx.getExtension("WEBGL_draw_buffers");if(ext){ctx["drawBuffers"]=function(n,bufs){ext["drawBuffersWEBGL"](n,bufs)};return 1}}function __webgl_enable_WEBGL_multi_draw(ctx){return!!(ctx.multiDrawWebgl=ctx.getExtension("WEBGL_multi_draw"))}var GL={counter:1,buffers:[],programs:[],framebuffers:[],renderbuffers:[],textures:[],shaders:[],vaos:[],contexts:{},offscreenCanvases:{},queries:[],stringCache:{},unpackAlignment:4,recordError:function recordError(errorCode){if(!GL.lastError){GL.lastError=errorCode}},getNewId:function(table){var ret=GL.counter++;for(var i=table.length;i<ret;i++){table[i]=null}return ret},getSource:function(shader,count,string,length){var source="";for(var i=0;i<count;++i){var len=length?GROWABLE_HEAP_I32()[length+i*4>>>2]:-1;source+=UTF8ToString(GROWABLE_HEAP_I32()[string+i*4>>>2],len<0?undefined:len)}return source},createContext:function(canvas,webGLContextAttributes){if(!canvas.getContextSafariWebGL2Fixed){canvas.getContextSafariWebGL2Fixed=canvas.getContext;function fixedGetContext(ver,attrs){var gl=canvas.getContextSafariWebGL2Fixed(ver,attrs);return ver=="webgl"==gl instanceof WebGLRenderingContext?gl:null}canvas.getContext=fixedGetContext}var ctx=canvas.getContext("webgl",webGLContextAttributes);if(!ctx)return 0;var handle=GL.registerContext(ctx,webGLContextAttributes);return handle},registerContext:function(ctx,webGLContextAttributes){var handle=_malloc(8);GROWABLE_HEAP_I32()[handle+4>>>2]=_pthread_self();var context={handle:handle,attributes:webGLContextAttributes,version:webGLContextAttributes.majorVersion,GLctx:ctx};if(ctx.canvas)ctx.canvas.GLctxObject=context;GL.contexts[handle]=context;if(typeof webGLContextAttributes.enableExtensionsByDefault=="undefined"||webGLContextAttributes.enableExtensionsByDefault){GL.initExtensions(context)}return handle},makeContextCurrent:function(contextHandle){GL.currentContext=GL.contexts[contextHandle];Module.ctx=GLctx=GL.currentContext&&GL.currentContext.GLctx;return!(contextHandle&&!GLctx)},getContext:function(contextHandle){return GL.contexts[contextHandle]},deleteContext:function(contextHandle){if(GL.currentContext===GL.contexts[contextHandle])GL.currentContext=null;if(typeof JSEvents=="object")JSEvents.removeAllHandlersOnTarget(GL.contexts[contextHandle].GLctx.canvas);if(GL.contexts[contextHandle]&&GL.contexts[contextHandle].GLctx.canvas)GL.contexts[contextHandle].GLctx.canvas.GLctxObject=undefined;_free(GL.contexts[contextHandle].handle);GL.contexts[contextHandle]=null},initExtensions:function(context){if(!context)context=GL.currentContext;if(context.initExtensionsDone)return;context.initExtensionsDone=true;var GLctx=context.GLctx;__webgl_enable_ANGLE_instanced_arrays(GLctx);__webgl_enable_OES_vertex_array_object(GLctx);__webgl_enable_WEBGL_draw_buffers(GLctx);{GLctx.disjointTimerQueryExt=GLctx.getExtension("EXT_disjoint_timer_query")}__webgl_enable_WEBGL_multi_draw(GLctx);var exts=GLctx.getSupportedExtensions()||[];exts.forEach(function(ext){if(!ext.includes("lose_context")&&!ext.includes("debug")){GLctx.getExtension(ext)}})}};var __emscripten_webgl_power_preferences=["default","low-power","high-performance"];function _emscripten_webgl_do_create_context(target,attributes){var a=attributes>>2;var powerPreference=GROWABLE_HEAP_I32()[a+(24>>2)>>>0];var contextAttributes={"alpha":!!GROWABLE_HEAP_I32()[a+(0>>2)>>>0],"depth":!!GROWABLE_HEAP_I32()[a+(4>>2)>>>0],"stencil":!!GROWABLE_HEAP_I32()[a+(8>>2)>>>0],"antialias":!!GROWABLE_HEAP_I32()[a+(12>>2)>>>0],"premultipliedAlpha":!!GROWABLE_HEAP_I32()[a+(16>>2)>>>0],"preserveDrawingBuffer":!!GROWABLE_HEAP_I32()[a+(20>>2)>>>0],"powerPreference":__emscripten_webgl_power_preferences[powerPreference],"failIfMajorPerformanceCaveat":!!GROWABLE_HEAP_I32()[a+(28>>2)>>>0],majorVersion:GROWABLE_HEAP_I32()[a+(32>>2)>>>0],minorVersion:GROWABLE_HEAP_I32()[a+(36>>2)>>>0],enableExtensionsByDefault:GROWABLE_HEAP_I32()[a+(40>>2)>>>0],explicitSwapControl:GROWABLE_HEAP_I32()[a+(44>>2)>>>0],proxyContextToMainThread:GROWABLE_HEAP_I32()[a+(48>>2)>>>0],renderViaOffscreenBackBuffer:GROWABLE_HEAP_I32()[a+(52>>2)>>>0]};var canvas=findCanvasEventTarget(target);if(!canvas){return 0}if(contextAttributes.explicitSwapControl){return 0}var contextHandle=GL.createContext(canvas,contextAttributes);return contextHandle}function _emscripten_webgl_create_context(a0,a1){return _emscripten_webgl_do_create_context(a0,a1)}var ENV={};function getExecutableName(){return thisProgram||"./this.program"}function getEnvStrings(){if(!getEnvStrings.strings){var lang=(typeof navigator=="object"&&navigator.languages&&navigator.languages[0]||"C").replace("-","_")+".UTF-8";var env={"USER":"web_user","LOGNAME":"web_user","PATH":"/","PWD":"/","HOME":"/home/web_user","LANG":lang,"_":getExecutableName()};for(var x in ENV){if(ENV[x]===undefined)delete env[x];else env[x]=ENV[x]}var strings=[];for(var x in env){strings.push(x+"="+env[x])}getEnvStrings.strings=strings}return getEnvStrings.strings}var SYSCALLS={buffers:[null,[],[]],printChar:function(stream,curr){var buffer=SYSCALLS.buffers[stream];if(curr===0||curr===10){(stream===1?out:err)(UTF8ArrayToString(buffer,0));buffer.length=0}else{buffer.push(curr)}},varargs:undefined,get:function(){SYSCALLS.varargs+=4;var ret=GROWABLE_HEAP_I32()[SYSCALLS.varargs-4>>>2];return ret},getStr:function(ptr){var ret=UTF8ToString(ptr);return ret},get64:function(low,high){return low}};function _environ_get(__environ,environ_buf){if(ENVIRONMENT_IS_PTHREAD)return _emscripten_proxy_to_main_thread_js(3,1,__environ,environ_buf);var bufSize=0;getEnvStrings().forEach(function(string,i){var ptr=environ_buf+bufSize;GROWABLE_HEAP_I32()[__environ+i*4>>>2]=ptr;writeAsciiToMemory(string,ptr);bufSize+=string.length+1});return 0}function _environ_sizes_get(penviron_count,penviron_buf_size){if(ENVIRONMENT_IS_PTHREAD)return _emscripten_proxy_to_main_thread_js(4,1,penviron_count,penviron_buf_size);var strings=getEnvStrings();GROWABLE_HEAP_I32()[penviron_count>>>2]=strings.length;var bufSize=0;strings.forEach(function(string){bufSize+=string.length+1});GROWABLE_HEAP_I32()[penviron_buf_size>>>2]=bufSize;return 0}function _fd_close(fd){if(ENVIRONMENT_IS_PTHREAD)return _emscripten_proxy_to_main_thread_js(5,1,fd);return 0}function _fd_seek(fd,offset_bigint,whence,newOffset){if(ENVIRONMENT_IS_PTHREAD)return _emscripten_proxy_to_main_thread_js(6,1,fd,offset_bigint,whence,newOffset)}function _fd_write(fd,iov,iovcnt,pnum){if(ENVIRONMENT_IS_PTHREAD)return _emscripten_proxy_to_main_thread_js(7,1,fd,iov,iovcnt,pnum);var num=0;for(var i=0;i<iovcnt;i++){var ptr=GROWABLE_HEAP_I32()[iov>>>2];var len=GROWABLE_HEAP_I32()[iov+4>>>2];iov+=8;for(var j=0;j<len;j++){SYSCALLS.printChar(fd,GROWABLE_HEAP_U8()[ptr+j>>>0])}num+=len}GROWABLE_HEAP_I32()[pnum>>>2]=num;return 0}function _time(ptr){var ret=Date.now()/1e3|0;if(ptr){GROWABLE_HEAP_I32()[ptr>>>2]=ret}return ret}PThread.init();var GLctx;var proxiedFunctionTable=[null,exitOnMainThread,_emscripten_set_canvas_element_size_main_thread,_environ_get,_environ_sizes_get,_fd_close,_fd_seek,_fd_write];var asmLibraryArg={"b":___assert_fail,"t":___emscripten_init_main_thread_js,"g":___emscripten_thread_cleanup,"i":___pthread_create_js,"s":__emscripten_default_pthread_stack_size,"x":__emscripten_notify_thread_queue,"c":_clock_gettime,"h":_emscripten_check_blocking_allowed,"d":_emscripten_get_now,"l":_emscripten_memcpy_big,"n":_emscripten_num_logical_cores,"u":_emscripten_receive_on_main_thread_js,"o":_emscripten_resize_heap,"v":_emscripten_set_canvas_element_size,"m":_emscripten_unwind_to_js_event_loop,"w":_emscripten_webgl_create_context,"j":_environ_get,"k":_environ_sizes_get,"e":_exit,"r":_fd_close,"p":_fd_seek,"f":_fd_write,"a":wasmMemory||Module["wasmMemory"],"q":_time};var asm=createWasm();var ___wasm_call_ctors=Module["___wasm_call_ctors"]=function(){return(___wasm_call_ctors=Module["___wasm_call_ctors"]=Module["asm"]["y"]).apply(null,arguments)};var _malloc=Module["_malloc"]=function(){return(_malloc=Module["_malloc"]=Module["asm"]["z"]).apply(null,arguments)};var _free=Module["_free"]=function(){return(_free=Module["_free"]=Module["asm"]["A"]).apply(null,arguments)};var _futhark_context_config_set_num_threads=Module["_futhark_context_config_set_num_threads"]=function(){return(_futhark_context_config_set_num_threads=Module["_futhark_context_config_set_num_threads"]=Module["asm"]["B"]).apply(null,arguments)};var _futhark_context_get_error=Module["_futhark_context_get_error"]=function(){return(_futhark_context_get_error=Module["_futhark_context_get_error"]=Module["asm"]["C"]).apply(null,arguments)};var _futhark_context_config_new=Module["_futhark_context_config_new"]=function(){return(_futhark_context_config_new=Module["_futhark_context_config_new"]=Module["asm"]["D"]).apply(null,arguments)};var _futhark_context_config_free=Module["_futhark_context_config_free"]=function(){return(_futhark_context_config_free=Module["_futhark_context_config_free"]=Module["asm"]["E"]).apply(null,arguments)};var _futhark_context_new=Module["_futhark_context_new"]=function(){return(_futhark_context_new=Module["_futhark_context_new"]=Module["asm"]["F"]).apply(null,arguments)};var _futhark_context_free=Module["_futhark_context_free"]=function(){return(_futhark_context_free=Module["_futhark_context_free"]=Module["asm"]["G"]).apply(null,arguments)};var _futhark_new_u8_1d=Module["_futhark_new_u8_1d"]=function(){return(_futhark_new_u8_1d=Module["_futhark_new_u8_1d"]=Module["asm"]["H"]).apply(null,arguments)};var _futhark_free_u8_1d=Module["_futhark_free_u8_1d"]=function(){return(_futhark_free_u8_1d=Module["_futhark_free_u8_1d"]=Module["asm"]["I"]).apply(null,arguments)};var _futhark_values_u8_1d=Module["_futhark_values_u8_1d"]=function(){return(_futhark_values_u8_1d=Module["_futhark_values_u8_1d"]=Module["asm"]["J"]).apply(null,arguments)};var _futhark_values_raw_u8_1d=Module["_futhark_values_raw_u8_1d"]=function(){return(_futhark_values_raw_u8_1d=Module["_futhark_values_raw_u8_1d"]=Module["asm"]["K"]).apply(null,arguments)};var _futhark_shape_u8_1d=Module["_futhark_shape_u8_1d"]=function(){return(_futhark_shape_u8_1d=Module["_futhark_shape_u8_1d"]=Module["asm"]["L"]).apply(null,arguments)};var _futhark_new_u8_2d=Module["_futhark_new_u8_2d"]=function(){return(_futhark_new_u8_2d=Module["_futhark_new_u8_2d"]=Module["asm"]["M"]).apply(null,arguments)};var _futhark_free_u8_2d=Module["_futhark_free_u8_2d"]=function(){return(_futhark_free_u8_2d=Module["_futhark_free_u8_2d"]=Module["asm"]["N"]).apply(null,arguments)};var _futhark_values_u8_2d=Module["_futhark_values_u8_2d"]=function(){return(_futhark_values_u8_2d=Module["_futhark_values_u8_2d"]=Module["asm"]["O"]).apply(null,arguments)};var _futhark_values_raw_u8_2d=Module["_futhark_values_raw_u8_2d"]=function(){return(_futhark_values_raw_u8_2d=Module["_futhark_values_raw_u8_2d"]=Module["asm"]["P"]).apply(null,arguments)};var _futhark_shape_u8_2d=Module["_futhark_shape_u8_2d"]=function(){return(_futhark_shape_u8_2d=Module["_futhark_shape_u8_2d"]=Module["asm"]["Q"]).apply(null,arguments)};var _futhark_new_u8_3d=Module["_futhark_new_u8_3d"]=function(){return(_futhark_new_u8_3d=Module["_futhark_new_u8_3d"]=Module["asm"]["R"]).apply(null,arguments)};var _futhark_free_u8_3d=Module["_futhark_free_u8_3d"]=function(){return(_futhark_free_u8_3d=Module["_futhark_free_u8_3d"]=Module["asm"]["S"]).apply(null,arguments)};var _futhark_values_u8_3d=Module["_futhark_values_u8_3d"]=function(){return(_futhark_values_u8_3d=Module["_futhark_values_u8_3d"]=Module["asm"]["T"]).apply(null,arguments)};var _futhark_values_raw_u8_3d=Module["_futhark_values_raw_u8_3d"]=function(){return(_futhark_values_raw_u8_3d=Module["_futhark_values_raw_u8_3d"]=Module["asm"]["U"]).apply(null,arguments)};var _futhark_shape_u8_3d=Module["_futhark_shape_u8_3d"]=function(){return(_futhark_shape_u8_3d=Module["_futhark_shape_u8_3d"]=Module["asm"]["V"]).apply(null,arguments)};var _futhark_new_u8_4d=Module["_futhark_new_u8_4d"]=function(){return(_futhark_new_u8_4d=Module["_futhark_new_u8_4d"]=Module["asm"]["W"]).apply(null,arguments)};var _futhark_free_u8_4d=Module["_futhark_free_u8_4d"]=function(){return(_futhark_free_u8_4d=Module["_futhark_free_u8_4d"]=Module["asm"]["X"]).apply(null,arguments)};var _futhark_values_u8_4d=Module["_futhark_values_u8_4d"]=function(){return(_futhark_values_u8_4d=Module["_futhark_values_u8_4d"]=Module["asm"]["Y"]).apply(null,arguments)};var _futhark_values_raw_u8_4d=Module["_futhark_values_raw_u8_4d"]=function(){return(_futhark_values_raw_u8_4d=Module["_futhark_values_raw_u8_4d"]=Module["asm"]["Z"]).apply(null,arguments)};var _futhark_shape_u8_4d=Module["_futhark_shape_u8_4d"]=function(){return(_futhark_shape_u8_4d=Module["_futhark_shape_u8_4d"]=Module["asm"]["_"]).apply(null,arguments)};var _futhark_new_u8_5d=Module["_futhark_new_u8_5d"]=function(){return(_futhark_new_u8_5d=Module["_futhark_new_u8_5d"]=Module["asm"]["$"]).apply(null,arguments)};var _futhark_free_u8_5d=Module["_futhark_free_u8_5d"]=function(){return(_futhark_free_u8_5d=Module["_futhark_free_u8_5d"]=Module["asm"]["aa"]).apply(null,arguments)};var _futhark_values_u8_5d=Module["_futhark_values_u8_5d"]=function(){return(_futhark_values_u8_5d=Module["_futhark_values_u8_5d"]=Module["asm"]["ba"]).apply(null,arguments)};var _futhark_values_raw_u8_5d=Module["_futhark_values_raw_u8_5d"]=function(){return(_futhark_values_raw_u8_5d=Module["_futhark_values_raw_u8_5d"]=Module["asm"]["ca"]).apply(null,arguments)};var _futhark_shape_u8_5d=Module["_futhark_shape_u8_5d"]=function(){return(_futhark_shape_u8_5d=Module["_futhark_shape_u8_5d"]=Module["asm"]["da"]).apply(null,arguments)};var _futhark_new_u16_2d=Module["_futhark_new_u16_2d"]=function(){return(_futhark_new_u16_2d=Module["_futhark_new_u16_2d"]=Module["asm"]["ea"]).apply(null,arguments)};var _futhark_free_u16_2d=Module["_futhark_free_u16_2d"]=function(){return(_futhark_free_u16_2d=Module["_futhark_free_u16_2d"]=Module["asm"]["fa"]).apply(null,arguments)};var _futhark_values_u16_2d=Module["_futhark_values_u16_2d"]=function(){return(_futhark_values_u16_2d=Module["_futhark_values_u16_2d"]=Module["asm"]["ga"]).apply(null,arguments)};var _futhark_values_raw_u16_2d=Module["_futhark_values_raw_u16_2d"]=function(){return(_futhark_values_raw_u16_2d=Module["_futhark_values_raw_u16_2d"]=Module["asm"]["ha"]).apply(null,arguments)};var _futhark_shape_u16_2d=Module["_futhark_shape_u16_2d"]=function(){return(_futhark_shape_u16_2d=Module["_futhark_shape_u16_2d"]=Module["asm"]["ia"]).apply(null,arguments)};var _futhark_new_u16_3d=Module["_futhark_new_u16_3d"]=function(){return(_futhark_new_u16_3d=Module["_futhark_new_u16_3d"]=Module["asm"]["ja"]).apply(null,arguments)};var _futhark_free_u16_3d=Module["_futhark_free_u16_3d"]=function(){return(_futhark_free_u16_3d=Module["_futhark_free_u16_3d"]=Module["asm"]["ka"]).apply(null,arguments)};var _futhark_values_u16_3d=Module["_futhark_values_u16_3d"]=function(){return(_futhark_values_u16_3d=Module["_futhark_values_u16_3d"]=Module["asm"]["la"]).apply(null,arguments)};var _futhark_values_raw_u16_3d=Module["_futhark_values_raw_u16_3d"]=function(){return(_futhark_values_raw_u16_3d=Module["_futhark_values_raw_u16_3d"]=Module["asm"]["ma"]).apply(null,arguments)};var _futhark_shape_u16_3d=Module["_futhark_shape_u16_3d"]=function(){return(_futhark_shape_u16_3d=Module["_futhark_shape_u16_3d"]=Module["asm"]["na"]).apply(null,arguments)};var _futhark_new_u16_4d=Module["_futhark_new_u16_4d"]=function(){return(_futhark_new_u16_4d=Module["_futhark_new_u16_4d"]=Module["asm"]["oa"]).apply(null,arguments)};var _futhark_free_u16_4d=Module["_futhark_free_u16_4d"]=function(){return(_futhark_free_u16_4d=Module["_futhark_free_u16_4d"]=Module["asm"]["pa"]).apply(null,arguments)};var _futhark_values_u16_4d=Module["_futhark_values_u16_4d"]=function(){return(_futhark_values_u16_4d=Module["_futhark_values_u16_4d"]=Module["asm"]["qa"]).apply(null,arguments)};var _futhark_values_raw_u16_4d=Module["_futhark_values_raw_u16_4d"]=function(){return(_futhark_values_raw_u16_4d=Module["_futhark_values_raw_u16_4d"]=Module["asm"]["ra"]).apply(null,arguments)};var _futhark_shape_u16_4d=Module["_futhark_shape_u16_4d"]=function(){return(_futhark_shape_u16_4d=Module["_futhark_shape_u16_4d"]=Module["asm"]["sa"]).apply(null,arguments)};var _futhark_new_i64_1d=Module["_futhark_new_i64_1d"]=function(){return(_futhark_new_i64_1d=Module["_futhark_new_i64_1d"]=Module["asm"]["ta"]).apply(null,arguments)};var _futhark_free_i64_1d=Module["_futhark_free_i64_1d"]=function(){return(_futhark_free_i64_1d=Module["_futhark_free_i64_1d"]=Module["asm"]["ua"]).apply(null,arguments)};var _futhark_values_i64_1d=Module["_futhark_values_i64_1d"]=function(){return(_futhark_values_i64_1d=Module["_futhark_values_i64_1d"]=Module["asm"]["va"]).apply(null,arguments)};var _futhark_values_raw_i64_1d=Module["_futhark_values_raw_i64_1d"]=function(){return(_futhark_values_raw_i64_1d=Module["_futhark_values_raw_i64_1d"]=Module["asm"]["wa"]).apply(null,arguments)};var _futhark_shape_i64_1d=Module["_futhark_shape_i64_1d"]=function(){return(_futhark_shape_i64_1d=Module["_futhark_shape_i64_1d"]=Module["asm"]["xa"]).apply(null,arguments)};var _futhark_new_f32_1d=Module["_futhark_new_f32_1d"]=function(){return(_futhark_new_f32_1d=Module["_futhark_new_f32_1d"]=Module["asm"]["ya"]).apply(null,arguments)};var _futhark_free_f32_1d=Module["_futhark_free_f32_1d"]=function(){return(_futhark_free_f32_1d=Module["_futhark_free_f32_1d"]=Module["asm"]["za"]).apply(null,arguments)};var _futhark_values_f32_1d=Module["_futhark_values_f32_1d"]=function(){return(_futhark_values_f32_1d=Module["_futhark_values_f32_1d"]=Module["asm"]["Aa"]).apply(null,arguments)};var _futhark_values_raw_f32_1d=Module["_futhark_values_raw_f32_1d"]=function(){return(_futhark_values_raw_f32_1d=Module["_futhark_values_raw_f32_1d"]=Module["asm"]["Ba"]).apply(null,arguments)};var _futhark_shape_f32_1d=Module["_futhark_shape_f32_1d"]=function(){return(_futhark_shape_f32_1d=Module["_futhark_shape_f32_1d"]=Module["asm"]["Ca"]).apply(null,arguments)};var _futhark_new_f32_2d=Module["_futhark_new_f32_2d"]=function(){return(_futhark_new_f32_2d=Module["_futhark_new_f32_2d"]=Module["asm"]["Da"]).apply(null,arguments)};var _futhark_free_f32_2d=Module["_futhark_free_f32_2d"]=function(){return(_futhark_free_f32_2d=Module["_futhark_free_f32_2d"]=Module["asm"]["Ea"]).apply(null,arguments)};var _futhark_values_f32_2d=Module["_futhark_values_f32_2d"]=function(){return(_futhark_values_f32_2d=Module["_futhark_values_f32_2d"]=Module["asm"]["Fa"]).apply(null,arguments)};var _futhark_values_raw_f32_2d=Module["_futhark_values_raw_f32_2d"]=function(){return(_futhark_values_raw_f32_2d=Module["_futhark_values_raw_f32_2d"]=Module["asm"]["Ga"]).apply(null,arguments)};var _futhark_shape_f32_2d=Module["_futhark_shape_f32_2d"]=function(){return(_futhark_shape_f32_2d=Module["_futhark_shape_f32_2d"]=Module["asm"]["Ha"]).apply(null,arguments)};var _futhark_new_f32_3d=Module["_futhark_new_f32_3d"]=function(){return(_futhark_new_f32_3d=Module["_futhark_new_f32_3d"]=Module["asm"]["Ia"]).apply(null,arguments)};var _futhark_free_f32_3d=Module["_futhark_free_f32_3d"]=function(){return(_futhark_free_f32_3d=Module["_futhark_free_f32_3d"]=Module["asm"]["Ja"]).apply(null,arguments)};var _futhark_values_f32_3d=Module["_futhark_values_f32_3d"]=function(){return(_futhark_values_f32_3d=Module["_futhark_values_f32_3d"]=Module["asm"]["Ka"]).apply(null,arguments)};var _futhark_values_raw_f32_3d=Module["_futhark_values_raw_f32_3d"]=function(){return(_futhark_values_raw_f32_3d=Module["_futhark_values_raw_f32_3d"]=Module["asm"]["La"]).apply(null,arguments)};var _futhark_shape_f32_3d=Module["_futhark_shape_f32_3d"]=function(){return(_futhark_shape_f32_3d=Module["_futhark_shape_f32_3d"]=Module["asm"]["Ma"]).apply(null,arguments)};var _futhark_free_opaque_llama_q4_wasm_params=Module["_futhark_free_opaque_llama_q4_wasm_params"]=function(){return(_futhark_free_opaque_llama_q4_wasm_params=Module["_futhark_free_opaque_llama_q4_wasm_params"]=Module["asm"]["Na"]).apply(null,arguments)};var _futhark_free_opaque_cache=Module["_futhark_free_opaque_cache"]=function(){return(_futhark_free_opaque_cache=Module["_futhark_free_opaque_cache"]=Module["asm"]["Oa"]).apply(null,arguments)};var _futhark_free_opaque_llama_q8_wasm_params=Module["_futhark_free_opaque_llama_q8_wasm_params"]=function(){return(_futhark_free_opaque_llama_q8_wasm_params=Module["_futhark_free_opaque_llama_q8_wasm_params"]=Module["asm"]["Pa"]).apply(null,arguments)};var _futhark_free_opaque_llama_mixed_wasm_params=Module["_futhark_free_opaque_llama_mixed_wasm_params"]=function(){return(_futhark_free_opaque_llama_mixed_wasm_params=Module["_futhark_free_opaque_llama_mixed_wasm_params"]=Module["asm"]["Qa"]).apply(null,arguments)};var _futhark_entry_cache_grow=Module["_futhark_entry_cache_grow"]=function(){return(_futhark_entry_cache_grow=Module["_futhark_entry_cache_grow"]=Module["asm"]["Ra"]).apply(null,arguments)};var _futhark_entry_llama_mixed_cache=Module["_futhark_entry_llama_mixed_cache"]=function(){return(_futhark_entry_llama_mixed_cache=Module["_futhark_entry_llama_mixed_cache"]=Module["asm"]["Sa"]).apply(null,arguments)};var _futhark_entry_llama_mixed_init=Module["_futhark_entry_llama_mixed_init"]=function(){return(_futhark_entry_llama_mixed_init=Module["_futhark_entry_llama_mixed_init"]=Module["asm"]["Ta"]).apply(null,arguments)};var _futhark_entry_llama_mixed_run=Module["_futhark_entry_llama_mixed_run"]=function(){return(_futhark_entry_llama_mixed_run=Module["_futhark_entry_llama_mixed_run"]=Module["asm"]["Ua"]).apply(null,arguments)};var _futhark_entry_llama_q4_cache=Module["_futhark_entry_llama_q4_cache"]=function(){return(_futhark_entry_llama_q4_cache=Module["_futhark_entry_llama_q4_cache"]=Module["asm"]["Va"]).apply(null,arguments)};var _futhark_entry_llama_q4_init=Module["_futhark_entry_llama_q4_init"]=function(){return(_futhark_entry_llama_q4_init=Module["_futhark_entry_llama_q4_init"]=Module["asm"]["Wa"]).apply(null,arguments)};var _futhark_entry_llama_q4_run=Module["_futhark_entry_llama_q4_run"]=function(){return(_futhark_entry_llama_q4_run=Module["_futhark_entry_llama_q4_run"]=Module["asm"]["Xa"]).apply(null,arguments)};var _futhark_entry_llama_q8_cache=Module["_futhark_entry_llama_q8_cache"]=function(){return(_futhark_entry_llama_q8_cache=Module["_futhark_entry_llama_q8_cache"]=Module["asm"]["Ya"]).apply(null,arguments)};var _futhark_entry_llama_q8_init=Module["_futhark_entry_llama_q8_init"]=function(){return(_futhark_entry_llama_q8_init=Module["_futhark_entry_llama_q8_init"]=Module["asm"]["Za"]).apply(null,arguments)};var _futhark_entry_llama_q8_run=Module["_futhark_entry_llama_q8_run"]=function(){return(_futhark_entry_llama_q8_run=Module["_futhark_entry_llama_q8_run"]=Module["asm"]["_a"]).apply(null,arguments)};var ___errno_location=Module["___errno_location"]=function(){return(___errno_location=Module["___errno_location"]=Module["asm"]["$a"]).apply(null,arguments)};var _emscripten_tls_init=Module["_emscripten_tls_init"]=function(){return(_emscripten_tls_init=Module["_emscripten_tls_init"]=Module["asm"]["bb"]).apply(null,arguments)};var __emscripten_thread_crashed=Module["__emscripten_thread_crashed"]=function(){return(__emscripten_thread_crashed=Module["__emscripten_thread_crashed"]=Module["asm"]["cb"]).apply(null,arguments)};var __emscripten_thread_init=Module["__emscripten_thread_init"]=function(){return(__emscripten_thread_init=Module["__emscripten_thread_init"]=Module["asm"]["db"]).apply(null,arguments)};var _pthread_self=Module["_pthread_self"]=function(){return(_pthread_self=Module["_pthread_self"]=Module["asm"]["eb"]).apply(null,arguments)};var _emscripten_main_thread_process_queued_calls=Module["_emscripten_main_thread_process_queued_calls"]=function(){return(_emscripten_main_thread_process_queued_calls=Module["_emscripten_main_thread_process_queued_calls"]=Module["asm"]["fb"]).apply(null,arguments)};var _emscripten_current_thread_process_queued_calls=Module["_emscripten_current_thread_process_queued_calls"]=function(){return(_emscripten_current_thread_process_queued_calls=Module["_emscripten_current_thread_process_queued_calls"]=Module["asm"]["gb"]).apply(null,arguments)};var _emscripten_sync_run_in_main_thread_4=Module["_emscripten_sync_run_in_main_thread_4"]=function(){return(_emscripten_sync_run_in_main_thread_4=Module["_emscripten_sync_run_in_main_thread_4"]=Module["asm"]["hb"]).apply(null,arguments)};var _emscripten_run_in_main_runtime_thread_js=Module["_emscripten_run_in_main_runtime_thread_js"]=function(){return(_emscripten_run_in_main_runtime_thread_js=Module["_emscripten_run_in_main_runtime_thread_js"]=Module["asm"]["ib"]).apply(null,arguments)};var _emscripten_dispatch_to_thread_=Module["_emscripten_dispatch_to_thread_"]=function(){return(_emscripten_dispatch_to_thread_=Module["_emscripten_dispatch_to_thread_"]=Module["asm"]["jb"]).apply(null,arguments)};var __emscripten_thread_free_data=Module["__emscripten_thread_free_data"]=function(){return(__emscripten_thread_free_data=Module["__emscripten_thread_free_data"]=Module["asm"]["kb"]).apply(null,arguments)};var __emscripten_thread_exit=Module["__emscripten_thread_exit"]=function(){return(__emscripten_thread_exit=Module["__emscripten_thread_exit"]=Module["asm"]["lb"]).apply(null,arguments)};var _emscripten_stack_set_limits=Module["_emscripten_stack_set_limits"]=function(){return(_emscripten_stack_set_limits=Module["_emscripten_stack_set_limits"]=Module["asm"]["mb"]).apply(null,arguments)};var stackSave=Module["stackSave"]=function(){return(stackSave=Module["stackSave"]=Module["asm"]["nb"]).apply(null,arguments)};var stackRestore=Module["stackRestore"]=function(){return(stackRestore=Module["stackRestore"]=Module["asm"]["ob"]).apply(null,arguments)};var stackAlloc=Module["stackAlloc"]=function(){return(stackAlloc=Module["stackAlloc"]=Module["asm"]["pb"]).apply(null,arguments)};var __emscripten_allow_main_runtime_queued_calls=Module["__emscripten_allow_main_runtime_queued_calls"]=560408;Module["keepRuntimeAlive"]=keepRuntimeAlive;Module["PThread"]=PThread;Module["PThread"]=PThread;Module["wasmMemory"]=wasmMemory;Module["ExitStatus"]=ExitStatus;var calledRun;function ExitStatus(status){this.name="ExitStatus";this.message="Program terminated with exit("+status+")";this.status=status}dependenciesFulfilled=function runCaller(){if(!calledRun)run();if(!calledRun)dependenciesFulfilled=runCaller};function run(args){args=args||arguments_;if(runDependencies>0){return}if(ENVIRONMENT_IS_PTHREAD){readyPromiseResolve(Module);initRuntime();postMessage({"cmd":"loaded"});return}preRun();if(runDependencies>0){return}function doRun(){if(calledRun)return;calledRun=true;Module["calledRun"]=true;if(ABORT)return;initRuntime();readyPromiseResolve(Module);if(Module["onRuntimeInitialized"])Module["onRuntimeInitialized"]();postRun()}if(Module["setStatus"]){Module["setStatus"]("Running...");setTimeout(function(){setTimeout(function(){Module["setStatus"]("")},1);doRun()},1)}else{doRun()}}Module["run"]=run;function exit(status,implicit){EXITSTATUS=status;if(!implicit){if(ENVIRONMENT_IS_PTHREAD){exitOnMainThread(status);throw"unwind"}else{}}if(keepRuntimeAlive()){}else{exitRuntime()}procExit(status)}function procExit(code){EXITSTATUS=code;if(!keepRuntimeAlive()){PThread.terminateAllThreads();if(Module["onExit"])Module["onExit"](code);ABORT=true}quit_(code,new ExitStatus(code))}if(Module["preInit"]){if(typeof Module["preInit"]=="function")Module["preInit"]=[Module["preInit"]];while(Module["preInit"].length>0){Module["preInit"].pop()()}}run();


  return loadWASM.ready
}
);
})();
export default loadWASM;// Start of server.js

class Server {

  constructor(ctx) {
    this.ctx = ctx;
    this._vars = {};
    this._types = {};
    this._commands = [ 'inputs',
                       'outputs',
                       'call',
                       'restore',
                       'store',
                       'free',
                       'clear',
                       'pause_profiling',
                       'unpause_profiling',
                       'report',
                       'rename'
                     ];
  }

  _get_arg(args, i) {
    if (i < args.length) {
      return args[i];
    } else {
      throw 'Insufficient command args';
    }
  }

  _get_entry_point(entry) {
    if (entry in this.ctx.get_entry_points()) {
      return this.ctx.get_entry_points()[entry];
    } else {
      throw "Unkown entry point: " + entry;
    }
  }

  _check_var(vname) {
    if (!(vname in this._vars)) {
      throw 'Unknown variable: ' + vname;
    }
  }

  _set_var(vname, v, t) {
    this._vars[vname] = v;
    this._types[vname] = t;
  }

  _get_type(vname) {
    this._check_var(vname);
    return this._types[vname];
  }

  _get_var(vname) {
    this._check_var(vname);
    return this._vars[vname];
  }

  _cmd_inputs(args) {
    var entry = this._get_arg(args, 0);
    var inputs = this._get_entry_point(entry)[1];
    for (var i = 0; i < inputs.length; i++) {
      console.log(inputs[i]);
    }
  }

  _cmd_outputs(args) {
    var entry = this._get_arg(args, 0);
    var outputs = this._get_entry_point(entry)[2];
    for (var i = 0; i < outputs.length; i++) {
      console.log(outputs[i]);
    }
  }

  _cmd_dummy(args) {
    // pass
  }

  _cmd_free(args) {
    for (var i = 0; i < args.length; i++) {
      var vname = args[i];
      this._check_var(vname);
      delete this._vars[vname];
    }
  }

  _cmd_rename(args) {
    var oldname = this._get_arg(args, 0)
    var newname = this._get_arg(args, 1)
    if (newname in this._vars) {
      throw "Variable already exists: " + newname;
    }
    this._vars[newname] = this._vars[oldname];
    this._types[newname] = this._types[oldname];
    delete this._vars[oldname];
    delete this._types[oldname];
  }

  _cmd_call(args) {
    var entry = this._get_entry_point(this._get_arg(args, 0));
    var num_ins = entry[1].length;
    var num_outs = entry[2].length;
    var expected_len = 1 + num_outs + num_ins

    if (args.length != expected_len) {
      throw "Invalid argument count, expected " + expected_len
    }

    var out_vnames = args.slice(1, num_outs+1)
    for (var i = 0; i < out_vnames.length; i++) {
      var out_vname = out_vnames[i];
      if (out_vname in this._vars) {
        throw "Variable already exists: " + out_vname;
      }
    }
    var in_vnames = args.slice(1+num_outs);
    var ins = [];
    for (var i = 0; i < in_vnames.length; i++) {
      ins.push(this._get_var(in_vnames[i]));
    }
    // Call entry point function from string name
    var bef = performance.now()*1000;
    var vals = this.ctx[entry[0]].apply(this.ctx, ins);
    var aft = performance.now()*1000;
    if (num_outs == 1) {
      this._set_var(out_vnames[0], vals, entry[2][0]);
    } else {
      for (var i = 0; i < out_vnames.length; i++) {
        this._set_var(out_vnames[i], vals[i], entry[2][i]);
      }
    }
    console.log("runtime: " + Math.round(aft-bef));
  }

  _cmd_store(args) {
    var fname = this._get_arg(args, 0);
    for (var i = 1; i < args.length; i++) {
      var vname = args[i];
      var value = this._get_var(vname);
      var typ = this._get_type(vname);
      var fs = require("fs");
      var bin_val = construct_binary_value(value, typ);
      fs.appendFileSync(fname, bin_val, 'binary')
    }
  }

  fut_to_dim_typ(typ) {
    var type = typ;
    var count = 0;
    while (type.substr(0, 2) == '[]') {
      count = count + 1;
      type = type.slice(2);
    }
    return [count, type];
  }

  _cmd_restore(args) {
    if (args.length % 2 == 0) {
      throw "Invalid argument count";
    }

    var fname = args[0];
    var args = args.slice(1);

    var as = args;
    var reader = new Reader(fname);
    while (as.length != 0) {
      var vname = as[0];
      var typename = as[1];
      as = as.slice(2);

      if (vname in this._vars) {
        throw "Variable already exists: " + vname;
      }
      try {
        var value = read_value(typename, reader);
        if (typeof value == 'number' || typeof value == 'bigint') {
          this._set_var(vname, value, typename);
        } else {
          // We are working with an array and need to create to convert [shape, arr] to futhark ptr
          var shape= value[0];
          var arr = value[1];
          var dimtyp = this.fut_to_dim_typ(typename);
          var dim = dimtyp[0];
          var typ = dimtyp[1];
          var arg_list = [arr, ...shape];
          var fnam = "new_" + typ + "_" + dim + "d";
          var ptr = this.ctx[fnam].apply(this.ctx, arg_list);
          this._set_var(vname, ptr, typename);
        }
      } catch (err) {
        var err_msg = "Failed to restore variable " + vname + ".\nPossibly malformed data in " + fname + ".\n" + err.toString();
        throw err_msg;
      }
    }
    skip_spaces(reader);
    if (reader.get_buff().length != 0) {
      throw "Expected EOF after reading values";
    }
  }

  _process_line(line) {
    // TODO make sure it splits on anywhite space
    var words = line.split(" ");
    if (words.length == 0) {
      throw "Empty line";
    } else {
      var cmd = words[0];
      var args = words.splice(1);
      if (this._commands.includes(cmd)) {
        switch (cmd) {
        case 'inputs': this._cmd_inputs(args); break;
        case 'outputs': this._cmd_outputs(args); break
        case 'call': this._cmd_call(args); break
        case 'restore': this._cmd_restore(args); break
        case 'store': this._cmd_store(args); break
        case 'free': this._cmd_free(args); break
        case 'clear': this._cmd_dummy(args); break
        case 'pause_profiling': this._cmd_dummy(args); break
        case 'unpause_profiling': this._cmd_dummy(args); break
        case 'report': this._cmd_dummy(args); break
        case 'rename': this._cmd_rename(args); break
        }
      } else {
        throw "Unknown command: " + cmd;
      }
    }
  }

  run() {
    console.log('%%% OK'); // TODO figure out if flushing is neccesary for JS
    const readline = require('readline');
    const rl = readline.createInterface(process.stdin);
    rl.on('line', (line) => {
      if (line == "") {
        rl.close();
      }
      try {
        this._process_line(line);
        console.log('%%% OK');
      } catch (err) {
        console.log('%%% FAILURE');
        console.log(err);
        console.log('%%% OK');
      }
    }).on('close', () => { process.exit(0); });
  }
}

// End of server.js

// Start of values.js
var futharkPrimtypes =
  new Set([
    'i8',
    'i16',
    'i32',
    'i64',
    'u8',
    'u16',
    'u32',
    'u64',
    'f16',
    'f32',
    'f64',
    'bool']);


var typToType = { '  i8' : Int8Array ,
                  ' i16' : Int16Array ,
                  ' i32' : Int32Array ,
                  ' i64' : BigInt64Array ,
                  '  u8' : Uint8Array ,
                  ' u16' : Uint16Array ,
                  ' u32' : Uint32Array ,
                  ' u64' : BigUint64Array ,
                  ' f16' : Uint16Array ,
                  ' f32' : Float32Array ,
                  ' f64' : Float64Array ,
                  'bool' : Uint8Array
                };

function binToStringArray(buff, array) {
  for (var i = 0; i < array.length; i++) {
    array[i] = buff[i];
  }
}

function fileToBuff(fname) {
  var readline = require('readline');
  var fs = require('fs');
  var buff =  fs.readFileSync(fname);
  return buff;
}

var typToSize = {
  "bool" : 1,
  "  u8" : 1,
  "  i8" : 1,
  " u16" : 2,
  " i16" : 2,
  " u32" : 4,
  " i32" : 4,
  " f16" : 2,
  " f32" : 4,
  " u64" : 8,
  " i64" : 8,
  " f64" : 8,
}

function toU8(ta) {
  return new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength);
}

function construct_binary_value(v, typ) {
  var dims;
  var payload_bytes;
  var filler;
  if (v instanceof FutharkOpaque) {
    throw "Opaques are not supported";
  } else if (v instanceof FutharkArray) {
    var t = v.futharkType();
    var ftype = "    ".slice(t.length) + t;
    var shape = v.shape();
    var ta = v.toTypedArray(shape);
    var da = new BigInt64Array(shape);
    dims = shape.length;
    payload_bytes = da.byteLength + ta.byteLength;
    filler = (bytes) => {
      bytes.set(toU8(da), 7);
      bytes.set(toU8(ta), 7 + da.byteLength);
    }
  } else {
    var ftype = "    ".slice(typ.length) + typ;
    dims = 0;
    payload_bytes = typToSize[ftype];
    filler = (bytes) => {
      var scalar = new (typToType[ftype])([v]);
      bytes.set(toU8(scalar), 7);
    }
  }
  var total_bytes = 7 + payload_bytes;
  var bytes = new Uint8Array(total_bytes);
  bytes[0] = Buffer.from('b').readUInt8();
  bytes[1] = 2;
  bytes[2] = dims;
  for (var i = 0; i < 4; i++) {
    bytes[3+i] = ftype.charCodeAt(i);
  }
  filler(bytes);
  return Buffer.from(bytes);
}

class Reader {
  constructor(f) {
    this.f = f;
    this.buff = fileToBuff(f);
  }

  read_bin_array(num_dim, typ) {
    var u8_array = new Uint8Array(num_dim * 8);
    binToStringArray(this.buff.slice(0, num_dim * 8), u8_array);
    var shape = new BigInt64Array(u8_array.buffer);
    var length = shape[0];
    for (var i = 1; i < shape.length; i++) {
      length = length * shape[i];
    }
    length = Number(length);
    var dbytes = typToSize[typ];
    var u8_data = new Uint8Array(length * dbytes);
    binToStringArray(this.buff.slice(num_dim * 8, num_dim * 8 + dbytes * length), u8_data);
    var data  = new (typToType[typ])(u8_data.buffer);
    var tmp_buff = this.buff.slice(num_dim * 8, num_dim * 8 + dbytes * length);
    this.buff = this.buff.slice(num_dim * 8 + dbytes * length);
   return [shape, data];
  }

  read_bin_scalar(typ) {
    var size = typToSize[typ];
    var u8_array = new Uint8Array(size);
    binToStringArray(this.buff, u8_array);
    var array = new (typToType[typ])(u8_array.buffer);
    this.buff = this.buff.slice(u8_array.length); // Update buff to be unread part of the string
    return array[0];
  }

  skip_spaces() {
    while (this.buff.length > 0 && this.buff.slice(0, 1).toString().trim() == "") {
      this.buff = this.buff.slice(1);
    }
  }

  read_binary(typename, dim) {
    // Skip leading white space
    while (this.buff.slice(0, 1).toString().trim() == "") {
      this.buff = this.buff.slice(1);
    }
    if (this.buff[0] != 'b'.charCodeAt(0)) {
      throw "Not in binary format"
    }
    var version = this.buff[1];
    if (version != 2) {
      throw "Not version 2";
    }
    var num_dim = this.buff[2];
    var typ = this.buff.slice(3, 7);
    this.buff = this.buff.slice(7);
    var exp_typ = "[]".repeat(dim) + typename;
    var given_typ = "[]".repeat(num_dim) + typ.toString().trim();
    console.log(exp_typ);
    console.log(given_typ);
    if (exp_typ !== given_typ) {
      throw ("Expected type : " + exp_typ + ", Actual type : " + given_typ);
    }
    if (num_dim === 0) {
      return this.read_bin_scalar(typ);
    } else {
      return this.read_bin_array(num_dim, typ);
    }
  }

  get_buff() {
    return this.buff;
  }
}

// Function is redudant but is helpful for keeping consistent with python implementation
function skip_spaces(reader) {
  reader.skip_spaces();
}

function read_value(typename, reader) {
  var typ = typename;
  var dim = 0;
  while (typ.slice(0, 2) === "[]") {
    dim = dim + 1;
    typ = typ.slice(2);
  }
  if (!futharkPrimtypes.has(typ)) {
    throw ("Unkown type: " + typ);
  }

  var val = reader.read_binary(typ, dim);
  return val;
}

// End of values.js

// Start of wrapperclasses.js

class FutharkArray {
  constructor(ctx, ptr, type_name, dim, heap, fshape, fvalues, ffree) {
    this.ctx = ctx;
    this.ptr = ptr;
    this.type_name = type_name;
    this.dim = dim;
    this.heap = heap;
    this.fshape = fshape;
    this.fvalues = fvalues;
    this.ffree = ffree;
    this.valid = true;
  }

  validCheck() {
    if (!this.valid) {
      throw "Using freed memory"
    }
  }

  futharkType() {
    return this.type_name;
  }

  free() {
    this.validCheck();
    this.ffree(this.ctx.ctx, this.ptr);
    this.valid = false;
  }

  shape() {
    this.validCheck();
    var s = this.fshape(this.ctx.ctx, this.ptr) >> 3;
    return Array.from(this.ctx.wasm.HEAP64.subarray(s, s + this.dim));
  }

  toTypedArray(dims = this.shape()) {
    this.validCheck();
    console.assert(dims.length === this.dim, "dim=%s,dims=%s", this.dim, dims.toString());
    var length = Number(dims.reduce((a, b) => a * b));
    var v = this.fvalues(this.ctx.ctx, this.ptr) / this.heap.BYTES_PER_ELEMENT;
    return this.heap.subarray(v, v + length);
  }

  toArray() {
    this.validCheck();
    var dims = this.shape();
    var ta = this.toTypedArray(dims);
    return (function nest(offs, ds) {
      var d0 = Number(ds[0]);
      if (ds.length === 1) {
        return Array.from(ta.subarray(offs, offs + d0));
      } else {
        var d1 = Number(ds[1]);
        return Array.from(Array(d0), (x,i) => nest(offs + i * d1, ds.slice(1)));
      }
    })(0, dims);
  }
}

class FutharkOpaque {
  constructor(ctx, ptr, ffree) {
    this.ctx = ctx;
    this.ptr = ptr;
    this.ffree = ffree;
    this.valid = true;
  }

  validCheck() {
    if (!this.valid) {
      throw "Using freed memory"
    }
  }

  free() {
    this.validCheck();
    this.ffree(this.ctx.ctx, this.ptr);
    this.valid = false;
  }
}

// End of wrapperclasses.js

class FutharkContext {
constructor(wasm, num_threads) {
  this.wasm = wasm;
  this.cfg = this.wasm._futhark_context_config_new();
  if (num_threads) this.wasm._futhark_context_config_set_num_threads(this.cfg, num_threads);
  this.ctx = this.wasm._futhark_context_new(this.cfg);
  this.entry_points = {
    "cache_grow" : ["cache_grow", ["opaque_cache","i64"], ["opaque_cache"]],"llama_mixed_cache" : ["llama_mixed_cache", ["opaque_llama_mixed_wasm_params","i64","i64"], ["opaque_cache"]],"llama_mixed_init" : ["llama_mixed_init", ["i64","i64","i64","f32","i64","f32","i64","i64","i64","i64","[]u8","[]i64","[][]f32","[]u8","[]i64","[]u8","[]i64","[]u8","[]i64","[][]f32","[][]f32","[][]f32","[][]f32","[][]f32","[]u8","[]i64","[][]f32","[]u8","[]i64","[]u8","[]i64","[]u8","[]i64","[]f32","[]u8","[]i64","[]f32","[][][]f32","[][][]u16","[][][]u8","[][]u16","[][]u16","[][][]u8","[][]u16","[][]u16","[][][]u8","[][]u16","[][]u16","[][][]u8","[][][]u8","[][][]u8","[][]u16","[][]u16","[][]u8","[][]u8","[][][]u8","[][][]u8","[][]u16","[][]u16","[][][]u8","[][][]u8","[][]u16","[][]u16","[][]u8","[][]u8","[][][]u8","[][][]u8","[][]u16","[][][]u8"], ["opaque_llama_mixed_wasm_params"]],"llama_mixed_run" : ["llama_mixed_run", ["opaque_llama_mixed_wasm_params","opaque_cache","[]i64","[]i64","[]i64","[]i64"], ["[][]f32","opaque_cache"]],"llama_q4_cache" : ["llama_q4_cache", ["opaque_llama_q4_wasm_params","i64","i64"], ["opaque_cache"]],"llama_q4_init" : ["llama_q4_init", ["i64","i64","i64","f32","i64","f32","i64","i64","i64","i64","[][][][]u8","[][][]u16","[][][]u16","[][]f32","[][][][][]u8","[][][][]u16","[][][][]u16","[][][][][]u8","[][][][]u16","[][][][]u16","[][][][][]u8","[][][][]u16","[][][][]u16","[][]f32","[][]f32","[][]f32","[][]f32","[][]f32","[][][][][]u8","[][][][]u16","[][][][]u16","[][]f32","[][][][][]u8","[][][][]u16","[][][][]u16","[][][][][]u8","[][][][]u16","[][][][]u16","[][][][][]u8","[][][][]u16","[][][][]u16","[]f32","[][][][]u8","[][][]u16","[][][]u16","[]f32"], ["opaque_llama_q4_wasm_params"]],"llama_q4_run" : ["llama_q4_run", ["opaque_llama_q4_wasm_params","opaque_cache","[]i64","[]i64","[]i64","[]i64"], ["[][]f32","opaque_cache"]],"llama_q8_cache" : ["llama_q8_cache", ["opaque_llama_q8_wasm_params","i64","i64"], ["opaque_cache"]],"llama_q8_init" : ["llama_q8_init", ["i64","i64","i64","f32","i64","f32","i64","i64","i64","i64","[][][][]u8","[][][]u16","[][][]u16","[][]f32","[][][][][]u8","[][][][]u16","[][][][]u16","[][][][][]u8","[][][][]u16","[][][][]u16","[][][][][]u8","[][][][]u16","[][][][]u16","[][]f32","[][]f32","[][]f32","[][]f32","[][]f32","[][][][][]u8","[][][][]u16","[][][][]u16","[][]f32","[][][][][]u8","[][][][]u16","[][][][]u16","[][][][][]u8","[][][][]u16","[][][][]u16","[][][][][]u8","[][][][]u16","[][][][]u16","[]f32","[][][][]u8","[][][]u16","[][][]u16","[]f32"], ["opaque_llama_q8_wasm_params"]],"llama_q8_run" : ["llama_q8_run", ["opaque_llama_q8_wasm_params","opaque_cache","[]i64","[]i64","[]i64","[]i64"], ["[][]f32","opaque_cache"]]
  };
}
free() {
  this.wasm._futhark_context_free(this.ctx);
  this.wasm._futhark_context_config_free(this.cfg);
}
get_entry_points() {
  return this.entry_points;
}
get_error() {
  var ptr = this.wasm._futhark_context_get_error(this.ctx);
  var len = HEAP8.subarray(ptr).indexOf(0);
  var str = String.fromCharCode(...HEAP8.subarray(ptr, ptr + len));
  this.wasm._free(ptr);
  return str;
}
new_u8_5d_from_jsarray(array5d) {
  return this.new_u8_5d(array5d.flat(), array5d.length, array5d[0].length, array5d[0][0].length, array5d[0][0][0].length, array5d[0][0][0][0].length);
}
new_u8_5d(array, d0, d1, d2, d3, d4) {
  console.assert(array.length === Number(d0)*Number(d1)*Number(d2)*Number(d3)*Number(d4), 'len=%s,dims=%s', array.length, [d0, d1, d2, d3, d4].toString());
    var copy = this.wasm._malloc(array.length << 0);
    this.wasm.HEAPU8.set(array, copy >> 0);
    var ptr = this.wasm._futhark_new_u8_5d(this.ctx, copy, BigInt(d0), BigInt(d1), BigInt(d2), BigInt(d3), BigInt(d4));
    this.wasm._free(copy);
    return this.new_u8_5d_from_ptr(ptr);
  }

  new_u8_5d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'u8', 5, this.wasm.HEAPU8, this.wasm._futhark_shape_u8_5d, this.wasm._futhark_values_raw_u8_5d, this.wasm._futhark_free_u8_5d);
  }
new_u16_4d_from_jsarray(array4d) {
  return this.new_u16_4d(array4d.flat(), array4d.length, array4d[0].length, array4d[0][0].length, array4d[0][0][0].length);
}
new_u16_4d(array, d0, d1, d2, d3) {
  console.assert(array.length === Number(d0)*Number(d1)*Number(d2)*Number(d3), 'len=%s,dims=%s', array.length, [d0, d1, d2, d3].toString());
    var copy = this.wasm._malloc(array.length << 1);
    this.wasm.HEAPU16.set(array, copy >> 1);
    var ptr = this.wasm._futhark_new_u16_4d(this.ctx, copy, BigInt(d0), BigInt(d1), BigInt(d2), BigInt(d3));
    this.wasm._free(copy);
    return this.new_u16_4d_from_ptr(ptr);
  }

  new_u16_4d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'u16', 4, this.wasm.HEAPU16, this.wasm._futhark_shape_u16_4d, this.wasm._futhark_values_raw_u16_4d, this.wasm._futhark_free_u16_4d);
  }
new_u8_4d_from_jsarray(array4d) {
  return this.new_u8_4d(array4d.flat(), array4d.length, array4d[0].length, array4d[0][0].length, array4d[0][0][0].length);
}
new_u8_4d(array, d0, d1, d2, d3) {
  console.assert(array.length === Number(d0)*Number(d1)*Number(d2)*Number(d3), 'len=%s,dims=%s', array.length, [d0, d1, d2, d3].toString());
    var copy = this.wasm._malloc(array.length << 0);
    this.wasm.HEAPU8.set(array, copy >> 0);
    var ptr = this.wasm._futhark_new_u8_4d(this.ctx, copy, BigInt(d0), BigInt(d1), BigInt(d2), BigInt(d3));
    this.wasm._free(copy);
    return this.new_u8_4d_from_ptr(ptr);
  }

  new_u8_4d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'u8', 4, this.wasm.HEAPU8, this.wasm._futhark_shape_u8_4d, this.wasm._futhark_values_raw_u8_4d, this.wasm._futhark_free_u8_4d);
  }
new_f32_3d_from_jsarray(array3d) {
  return this.new_f32_3d(array3d.flat(), array3d.length, array3d[0].length, array3d[0][0].length);
}
new_f32_3d(array, d0, d1, d2) {
  console.assert(array.length === Number(d0)*Number(d1)*Number(d2), 'len=%s,dims=%s', array.length, [d0, d1, d2].toString());
    var copy = this.wasm._malloc(array.length << 2);
    this.wasm.HEAPF32.set(array, copy >> 2);
    var ptr = this.wasm._futhark_new_f32_3d(this.ctx, copy, BigInt(d0), BigInt(d1), BigInt(d2));
    this.wasm._free(copy);
    return this.new_f32_3d_from_ptr(ptr);
  }

  new_f32_3d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'f32', 3, this.wasm.HEAPF32, this.wasm._futhark_shape_f32_3d, this.wasm._futhark_values_raw_f32_3d, this.wasm._futhark_free_f32_3d);
  }
new_u16_3d_from_jsarray(array3d) {
  return this.new_u16_3d(array3d.flat(), array3d.length, array3d[0].length, array3d[0][0].length);
}
new_u16_3d(array, d0, d1, d2) {
  console.assert(array.length === Number(d0)*Number(d1)*Number(d2), 'len=%s,dims=%s', array.length, [d0, d1, d2].toString());
    var copy = this.wasm._malloc(array.length << 1);
    this.wasm.HEAPU16.set(array, copy >> 1);
    var ptr = this.wasm._futhark_new_u16_3d(this.ctx, copy, BigInt(d0), BigInt(d1), BigInt(d2));
    this.wasm._free(copy);
    return this.new_u16_3d_from_ptr(ptr);
  }

  new_u16_3d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'u16', 3, this.wasm.HEAPU16, this.wasm._futhark_shape_u16_3d, this.wasm._futhark_values_raw_u16_3d, this.wasm._futhark_free_u16_3d);
  }
new_u8_3d_from_jsarray(array3d) {
  return this.new_u8_3d(array3d.flat(), array3d.length, array3d[0].length, array3d[0][0].length);
}
new_u8_3d(array, d0, d1, d2) {
  console.assert(array.length === Number(d0)*Number(d1)*Number(d2), 'len=%s,dims=%s', array.length, [d0, d1, d2].toString());
    var copy = this.wasm._malloc(array.length << 0);
    this.wasm.HEAPU8.set(array, copy >> 0);
    var ptr = this.wasm._futhark_new_u8_3d(this.ctx, copy, BigInt(d0), BigInt(d1), BigInt(d2));
    this.wasm._free(copy);
    return this.new_u8_3d_from_ptr(ptr);
  }

  new_u8_3d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'u8', 3, this.wasm.HEAPU8, this.wasm._futhark_shape_u8_3d, this.wasm._futhark_values_raw_u8_3d, this.wasm._futhark_free_u8_3d);
  }
new_f32_2d_from_jsarray(array2d) {
  return this.new_f32_2d(array2d.flat(), array2d.length, array2d[0].length);
}
new_f32_2d(array, d0, d1) {
  console.assert(array.length === Number(d0)*Number(d1), 'len=%s,dims=%s', array.length, [d0, d1].toString());
    var copy = this.wasm._malloc(array.length << 2);
    this.wasm.HEAPF32.set(array, copy >> 2);
    var ptr = this.wasm._futhark_new_f32_2d(this.ctx, copy, BigInt(d0), BigInt(d1));
    this.wasm._free(copy);
    return this.new_f32_2d_from_ptr(ptr);
  }

  new_f32_2d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'f32', 2, this.wasm.HEAPF32, this.wasm._futhark_shape_f32_2d, this.wasm._futhark_values_raw_f32_2d, this.wasm._futhark_free_f32_2d);
  }
new_u16_2d_from_jsarray(array2d) {
  return this.new_u16_2d(array2d.flat(), array2d.length, array2d[0].length);
}
new_u16_2d(array, d0, d1) {
  console.assert(array.length === Number(d0)*Number(d1), 'len=%s,dims=%s', array.length, [d0, d1].toString());
    var copy = this.wasm._malloc(array.length << 1);
    this.wasm.HEAPU16.set(array, copy >> 1);
    var ptr = this.wasm._futhark_new_u16_2d(this.ctx, copy, BigInt(d0), BigInt(d1));
    this.wasm._free(copy);
    return this.new_u16_2d_from_ptr(ptr);
  }

  new_u16_2d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'u16', 2, this.wasm.HEAPU16, this.wasm._futhark_shape_u16_2d, this.wasm._futhark_values_raw_u16_2d, this.wasm._futhark_free_u16_2d);
  }
new_u8_2d_from_jsarray(array2d) {
  return this.new_u8_2d(array2d.flat(), array2d.length, array2d[0].length);
}
new_u8_2d(array, d0, d1) {
  console.assert(array.length === Number(d0)*Number(d1), 'len=%s,dims=%s', array.length, [d0, d1].toString());
    var copy = this.wasm._malloc(array.length << 0);
    this.wasm.HEAPU8.set(array, copy >> 0);
    var ptr = this.wasm._futhark_new_u8_2d(this.ctx, copy, BigInt(d0), BigInt(d1));
    this.wasm._free(copy);
    return this.new_u8_2d_from_ptr(ptr);
  }

  new_u8_2d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'u8', 2, this.wasm.HEAPU8, this.wasm._futhark_shape_u8_2d, this.wasm._futhark_values_raw_u8_2d, this.wasm._futhark_free_u8_2d);
  }
new_f32_1d_from_jsarray(array1d) {
  return this.new_f32_1d(array1d, array1d.length);
}
new_f32_1d(array, d0) {
  console.assert(array.length === Number(d0), 'len=%s,dims=%s', array.length, [d0].toString());
    var copy = this.wasm._malloc(array.length << 2);
    this.wasm.HEAPF32.set(array, copy >> 2);
    var ptr = this.wasm._futhark_new_f32_1d(this.ctx, copy, BigInt(d0));
    this.wasm._free(copy);
    return this.new_f32_1d_from_ptr(ptr);
  }

  new_f32_1d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'f32', 1, this.wasm.HEAPF32, this.wasm._futhark_shape_f32_1d, this.wasm._futhark_values_raw_f32_1d, this.wasm._futhark_free_f32_1d);
  }
new_i64_1d_from_jsarray(array1d) {
  return this.new_i64_1d(array1d, array1d.length);
}
new_i64_1d(array, d0) {
  console.assert(array.length === Number(d0), 'len=%s,dims=%s', array.length, [d0].toString());
    var copy = this.wasm._malloc(array.length << 3);
    this.wasm.HEAP64.set(array, copy >> 3);
    var ptr = this.wasm._futhark_new_i64_1d(this.ctx, copy, BigInt(d0));
    this.wasm._free(copy);
    return this.new_i64_1d_from_ptr(ptr);
  }

  new_i64_1d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'i64', 1, this.wasm.HEAP64, this.wasm._futhark_shape_i64_1d, this.wasm._futhark_values_raw_i64_1d, this.wasm._futhark_free_i64_1d);
  }
new_u8_1d_from_jsarray(array1d) {
  return this.new_u8_1d(array1d, array1d.length);
}
new_u8_1d(array, d0) {
  console.assert(array.length === Number(d0), 'len=%s,dims=%s', array.length, [d0].toString());
    var copy = this.wasm._malloc(array.length << 0);
    this.wasm.HEAPU8.set(array, copy >> 0);
    var ptr = this.wasm._futhark_new_u8_1d(this.ctx, copy, BigInt(d0));
    this.wasm._free(copy);
    return this.new_u8_1d_from_ptr(ptr);
  }

  new_u8_1d_from_ptr(ptr) {
    return new FutharkArray(this, ptr, 'u8', 1, this.wasm.HEAPU8, this.wasm._futhark_shape_u8_1d, this.wasm._futhark_values_raw_u8_1d, this.wasm._futhark_free_u8_1d);
  }

cache_grow(in0, in1) {
  var out = [4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
  
  if (this.wasm._futhark_entry_cache_grow(this.ctx, ...out, in0.ptr, in1) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = new FutharkOpaque(this, this.wasm.HEAP32[out[0] >> 2], this.wasm._futhark_free_opaque_cache);
  do_free();
  return result0;
}
llama_mixed_cache(in0, in1, in2) {
  var out = [4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
  
  if (this.wasm._futhark_entry_llama_mixed_cache(this.ctx, ...out, in0.ptr, in1, in2) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = new FutharkOpaque(this, this.wasm.HEAP32[out[0] >> 2], this.wasm._futhark_free_opaque_cache);
  do_free();
  return result0;
}
llama_mixed_init(in0, in1, in2, in3, in4, in5, in6, in7, in8, in9, in10, in11, in12, in13, in14, in15, in16, in17, in18, in19, in20, in21, in22, in23, in24, in25, in26, in27, in28, in29, in30, in31, in32, in33, in34, in35, in36, in37, in38, in39, in40, in41, in42, in43, in44, in45, in46, in47, in48, in49, in50, in51, in52, in53, in54, in55, in56, in57, in58, in59, in60, in61, in62, in63, in64, in65, in66, in67, in68) {
  var out = [4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
    if (in10 instanceof Array) { in10 = this.new_u8_1d_from_jsarray(in10); to_free.push(in10); }
    if (in11 instanceof Array) { in11 = this.new_i64_1d_from_jsarray(in11); to_free.push(in11); }
    if (in12 instanceof Array) { in12 = this.new_f32_2d_from_jsarray(in12); to_free.push(in12); }
    if (in13 instanceof Array) { in13 = this.new_u8_1d_from_jsarray(in13); to_free.push(in13); }
    if (in14 instanceof Array) { in14 = this.new_i64_1d_from_jsarray(in14); to_free.push(in14); }
    if (in15 instanceof Array) { in15 = this.new_u8_1d_from_jsarray(in15); to_free.push(in15); }
    if (in16 instanceof Array) { in16 = this.new_i64_1d_from_jsarray(in16); to_free.push(in16); }
    if (in17 instanceof Array) { in17 = this.new_u8_1d_from_jsarray(in17); to_free.push(in17); }
    if (in18 instanceof Array) { in18 = this.new_i64_1d_from_jsarray(in18); to_free.push(in18); }
    if (in19 instanceof Array) { in19 = this.new_f32_2d_from_jsarray(in19); to_free.push(in19); }
    if (in20 instanceof Array) { in20 = this.new_f32_2d_from_jsarray(in20); to_free.push(in20); }
    if (in21 instanceof Array) { in21 = this.new_f32_2d_from_jsarray(in21); to_free.push(in21); }
    if (in22 instanceof Array) { in22 = this.new_f32_2d_from_jsarray(in22); to_free.push(in22); }
    if (in23 instanceof Array) { in23 = this.new_f32_2d_from_jsarray(in23); to_free.push(in23); }
    if (in24 instanceof Array) { in24 = this.new_u8_1d_from_jsarray(in24); to_free.push(in24); }
    if (in25 instanceof Array) { in25 = this.new_i64_1d_from_jsarray(in25); to_free.push(in25); }
    if (in26 instanceof Array) { in26 = this.new_f32_2d_from_jsarray(in26); to_free.push(in26); }
    if (in27 instanceof Array) { in27 = this.new_u8_1d_from_jsarray(in27); to_free.push(in27); }
    if (in28 instanceof Array) { in28 = this.new_i64_1d_from_jsarray(in28); to_free.push(in28); }
    if (in29 instanceof Array) { in29 = this.new_u8_1d_from_jsarray(in29); to_free.push(in29); }
    if (in30 instanceof Array) { in30 = this.new_i64_1d_from_jsarray(in30); to_free.push(in30); }
    if (in31 instanceof Array) { in31 = this.new_u8_1d_from_jsarray(in31); to_free.push(in31); }
    if (in32 instanceof Array) { in32 = this.new_i64_1d_from_jsarray(in32); to_free.push(in32); }
    if (in33 instanceof Array) { in33 = this.new_f32_1d_from_jsarray(in33); to_free.push(in33); }
    if (in34 instanceof Array) { in34 = this.new_u8_1d_from_jsarray(in34); to_free.push(in34); }
    if (in35 instanceof Array) { in35 = this.new_i64_1d_from_jsarray(in35); to_free.push(in35); }
    if (in36 instanceof Array) { in36 = this.new_f32_1d_from_jsarray(in36); to_free.push(in36); }
    if (in37 instanceof Array) { in37 = this.new_f32_3d_from_jsarray(in37); to_free.push(in37); }
    if (in38 instanceof Array) { in38 = this.new_u16_3d_from_jsarray(in38); to_free.push(in38); }
    if (in39 instanceof Array) { in39 = this.new_u8_3d_from_jsarray(in39); to_free.push(in39); }
    if (in40 instanceof Array) { in40 = this.new_u16_2d_from_jsarray(in40); to_free.push(in40); }
    if (in41 instanceof Array) { in41 = this.new_u16_2d_from_jsarray(in41); to_free.push(in41); }
    if (in42 instanceof Array) { in42 = this.new_u8_3d_from_jsarray(in42); to_free.push(in42); }
    if (in43 instanceof Array) { in43 = this.new_u16_2d_from_jsarray(in43); to_free.push(in43); }
    if (in44 instanceof Array) { in44 = this.new_u16_2d_from_jsarray(in44); to_free.push(in44); }
    if (in45 instanceof Array) { in45 = this.new_u8_3d_from_jsarray(in45); to_free.push(in45); }
    if (in46 instanceof Array) { in46 = this.new_u16_2d_from_jsarray(in46); to_free.push(in46); }
    if (in47 instanceof Array) { in47 = this.new_u16_2d_from_jsarray(in47); to_free.push(in47); }
    if (in48 instanceof Array) { in48 = this.new_u8_3d_from_jsarray(in48); to_free.push(in48); }
    if (in49 instanceof Array) { in49 = this.new_u8_3d_from_jsarray(in49); to_free.push(in49); }
    if (in50 instanceof Array) { in50 = this.new_u8_3d_from_jsarray(in50); to_free.push(in50); }
    if (in51 instanceof Array) { in51 = this.new_u16_2d_from_jsarray(in51); to_free.push(in51); }
    if (in52 instanceof Array) { in52 = this.new_u16_2d_from_jsarray(in52); to_free.push(in52); }
    if (in53 instanceof Array) { in53 = this.new_u8_2d_from_jsarray(in53); to_free.push(in53); }
    if (in54 instanceof Array) { in54 = this.new_u8_2d_from_jsarray(in54); to_free.push(in54); }
    if (in55 instanceof Array) { in55 = this.new_u8_3d_from_jsarray(in55); to_free.push(in55); }
    if (in56 instanceof Array) { in56 = this.new_u8_3d_from_jsarray(in56); to_free.push(in56); }
    if (in57 instanceof Array) { in57 = this.new_u16_2d_from_jsarray(in57); to_free.push(in57); }
    if (in58 instanceof Array) { in58 = this.new_u16_2d_from_jsarray(in58); to_free.push(in58); }
    if (in59 instanceof Array) { in59 = this.new_u8_3d_from_jsarray(in59); to_free.push(in59); }
    if (in60 instanceof Array) { in60 = this.new_u8_3d_from_jsarray(in60); to_free.push(in60); }
    if (in61 instanceof Array) { in61 = this.new_u16_2d_from_jsarray(in61); to_free.push(in61); }
    if (in62 instanceof Array) { in62 = this.new_u16_2d_from_jsarray(in62); to_free.push(in62); }
    if (in63 instanceof Array) { in63 = this.new_u8_2d_from_jsarray(in63); to_free.push(in63); }
    if (in64 instanceof Array) { in64 = this.new_u8_2d_from_jsarray(in64); to_free.push(in64); }
    if (in65 instanceof Array) { in65 = this.new_u8_3d_from_jsarray(in65); to_free.push(in65); }
    if (in66 instanceof Array) { in66 = this.new_u8_3d_from_jsarray(in66); to_free.push(in66); }
    if (in67 instanceof Array) { in67 = this.new_u16_2d_from_jsarray(in67); to_free.push(in67); }
    if (in68 instanceof Array) { in68 = this.new_u8_3d_from_jsarray(in68); to_free.push(in68); }
  if (this.wasm._futhark_entry_llama_mixed_init(this.ctx, ...out, in0, in1, in2, in3, in4, in5, in6, in7, in8, in9, in10.ptr, in11.ptr, in12.ptr, in13.ptr, in14.ptr, in15.ptr, in16.ptr, in17.ptr, in18.ptr, in19.ptr, in20.ptr, in21.ptr, in22.ptr, in23.ptr, in24.ptr, in25.ptr, in26.ptr, in27.ptr, in28.ptr, in29.ptr, in30.ptr, in31.ptr, in32.ptr, in33.ptr, in34.ptr, in35.ptr, in36.ptr, in37.ptr, in38.ptr, in39.ptr, in40.ptr, in41.ptr, in42.ptr, in43.ptr, in44.ptr, in45.ptr, in46.ptr, in47.ptr, in48.ptr, in49.ptr, in50.ptr, in51.ptr, in52.ptr, in53.ptr, in54.ptr, in55.ptr, in56.ptr, in57.ptr, in58.ptr, in59.ptr, in60.ptr, in61.ptr, in62.ptr, in63.ptr, in64.ptr, in65.ptr, in66.ptr, in67.ptr, in68.ptr) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = new FutharkOpaque(this, this.wasm.HEAP32[out[0] >> 2], this.wasm._futhark_free_opaque_llama_mixed_wasm_params);
  do_free();
  return result0;
}
llama_mixed_run(in0, in1, in2, in3, in4, in5) {
  var out = [4, 4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
    if (in2 instanceof Array) { in2 = this.new_i64_1d_from_jsarray(in2); to_free.push(in2); }
    if (in3 instanceof Array) { in3 = this.new_i64_1d_from_jsarray(in3); to_free.push(in3); }
    if (in4 instanceof Array) { in4 = this.new_i64_1d_from_jsarray(in4); to_free.push(in4); }
    if (in5 instanceof Array) { in5 = this.new_i64_1d_from_jsarray(in5); to_free.push(in5); }
  if (this.wasm._futhark_entry_llama_mixed_run(this.ctx, ...out, in0.ptr, in1.ptr, in2.ptr, in3.ptr, in4.ptr, in5.ptr) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = this.new_f32_2d_from_ptr(this.wasm.HEAP32[out[0] >> 2]);
    var result1 = new FutharkOpaque(this, this.wasm.HEAP32[out[1] >> 2], this.wasm._futhark_free_opaque_cache);
  do_free();
  return [result0, result1];
}
llama_q4_cache(in0, in1, in2) {
  var out = [4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
  
  if (this.wasm._futhark_entry_llama_q4_cache(this.ctx, ...out, in0.ptr, in1, in2) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = new FutharkOpaque(this, this.wasm.HEAP32[out[0] >> 2], this.wasm._futhark_free_opaque_cache);
  do_free();
  return result0;
}
llama_q4_init(in0, in1, in2, in3, in4, in5, in6, in7, in8, in9, in10, in11, in12, in13, in14, in15, in16, in17, in18, in19, in20, in21, in22, in23, in24, in25, in26, in27, in28, in29, in30, in31, in32, in33, in34, in35, in36, in37, in38, in39, in40, in41, in42, in43, in44, in45) {
  var out = [4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
    if (in10 instanceof Array) { in10 = this.new_u8_4d_from_jsarray(in10); to_free.push(in10); }
    if (in11 instanceof Array) { in11 = this.new_u16_3d_from_jsarray(in11); to_free.push(in11); }
    if (in12 instanceof Array) { in12 = this.new_u16_3d_from_jsarray(in12); to_free.push(in12); }
    if (in13 instanceof Array) { in13 = this.new_f32_2d_from_jsarray(in13); to_free.push(in13); }
    if (in14 instanceof Array) { in14 = this.new_u8_5d_from_jsarray(in14); to_free.push(in14); }
    if (in15 instanceof Array) { in15 = this.new_u16_4d_from_jsarray(in15); to_free.push(in15); }
    if (in16 instanceof Array) { in16 = this.new_u16_4d_from_jsarray(in16); to_free.push(in16); }
    if (in17 instanceof Array) { in17 = this.new_u8_5d_from_jsarray(in17); to_free.push(in17); }
    if (in18 instanceof Array) { in18 = this.new_u16_4d_from_jsarray(in18); to_free.push(in18); }
    if (in19 instanceof Array) { in19 = this.new_u16_4d_from_jsarray(in19); to_free.push(in19); }
    if (in20 instanceof Array) { in20 = this.new_u8_5d_from_jsarray(in20); to_free.push(in20); }
    if (in21 instanceof Array) { in21 = this.new_u16_4d_from_jsarray(in21); to_free.push(in21); }
    if (in22 instanceof Array) { in22 = this.new_u16_4d_from_jsarray(in22); to_free.push(in22); }
    if (in23 instanceof Array) { in23 = this.new_f32_2d_from_jsarray(in23); to_free.push(in23); }
    if (in24 instanceof Array) { in24 = this.new_f32_2d_from_jsarray(in24); to_free.push(in24); }
    if (in25 instanceof Array) { in25 = this.new_f32_2d_from_jsarray(in25); to_free.push(in25); }
    if (in26 instanceof Array) { in26 = this.new_f32_2d_from_jsarray(in26); to_free.push(in26); }
    if (in27 instanceof Array) { in27 = this.new_f32_2d_from_jsarray(in27); to_free.push(in27); }
    if (in28 instanceof Array) { in28 = this.new_u8_5d_from_jsarray(in28); to_free.push(in28); }
    if (in29 instanceof Array) { in29 = this.new_u16_4d_from_jsarray(in29); to_free.push(in29); }
    if (in30 instanceof Array) { in30 = this.new_u16_4d_from_jsarray(in30); to_free.push(in30); }
    if (in31 instanceof Array) { in31 = this.new_f32_2d_from_jsarray(in31); to_free.push(in31); }
    if (in32 instanceof Array) { in32 = this.new_u8_5d_from_jsarray(in32); to_free.push(in32); }
    if (in33 instanceof Array) { in33 = this.new_u16_4d_from_jsarray(in33); to_free.push(in33); }
    if (in34 instanceof Array) { in34 = this.new_u16_4d_from_jsarray(in34); to_free.push(in34); }
    if (in35 instanceof Array) { in35 = this.new_u8_5d_from_jsarray(in35); to_free.push(in35); }
    if (in36 instanceof Array) { in36 = this.new_u16_4d_from_jsarray(in36); to_free.push(in36); }
    if (in37 instanceof Array) { in37 = this.new_u16_4d_from_jsarray(in37); to_free.push(in37); }
    if (in38 instanceof Array) { in38 = this.new_u8_5d_from_jsarray(in38); to_free.push(in38); }
    if (in39 instanceof Array) { in39 = this.new_u16_4d_from_jsarray(in39); to_free.push(in39); }
    if (in40 instanceof Array) { in40 = this.new_u16_4d_from_jsarray(in40); to_free.push(in40); }
    if (in41 instanceof Array) { in41 = this.new_f32_1d_from_jsarray(in41); to_free.push(in41); }
    if (in42 instanceof Array) { in42 = this.new_u8_4d_from_jsarray(in42); to_free.push(in42); }
    if (in43 instanceof Array) { in43 = this.new_u16_3d_from_jsarray(in43); to_free.push(in43); }
    if (in44 instanceof Array) { in44 = this.new_u16_3d_from_jsarray(in44); to_free.push(in44); }
    if (in45 instanceof Array) { in45 = this.new_f32_1d_from_jsarray(in45); to_free.push(in45); }
  if (this.wasm._futhark_entry_llama_q4_init(this.ctx, ...out, in0, in1, in2, in3, in4, in5, in6, in7, in8, in9, in10.ptr, in11.ptr, in12.ptr, in13.ptr, in14.ptr, in15.ptr, in16.ptr, in17.ptr, in18.ptr, in19.ptr, in20.ptr, in21.ptr, in22.ptr, in23.ptr, in24.ptr, in25.ptr, in26.ptr, in27.ptr, in28.ptr, in29.ptr, in30.ptr, in31.ptr, in32.ptr, in33.ptr, in34.ptr, in35.ptr, in36.ptr, in37.ptr, in38.ptr, in39.ptr, in40.ptr, in41.ptr, in42.ptr, in43.ptr, in44.ptr, in45.ptr) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = new FutharkOpaque(this, this.wasm.HEAP32[out[0] >> 2], this.wasm._futhark_free_opaque_llama_q4_wasm_params);
  do_free();
  return result0;
}
llama_q4_run(in0, in1, in2, in3, in4, in5) {
  var out = [4, 4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
    if (in2 instanceof Array) { in2 = this.new_i64_1d_from_jsarray(in2); to_free.push(in2); }
    if (in3 instanceof Array) { in3 = this.new_i64_1d_from_jsarray(in3); to_free.push(in3); }
    if (in4 instanceof Array) { in4 = this.new_i64_1d_from_jsarray(in4); to_free.push(in4); }
    if (in5 instanceof Array) { in5 = this.new_i64_1d_from_jsarray(in5); to_free.push(in5); }
  if (this.wasm._futhark_entry_llama_q4_run(this.ctx, ...out, in0.ptr, in1.ptr, in2.ptr, in3.ptr, in4.ptr, in5.ptr) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = this.new_f32_2d_from_ptr(this.wasm.HEAP32[out[0] >> 2]);
    var result1 = new FutharkOpaque(this, this.wasm.HEAP32[out[1] >> 2], this.wasm._futhark_free_opaque_cache);
  do_free();
  return [result0, result1];
}
llama_q8_cache(in0, in1, in2) {
  var out = [4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
  
  if (this.wasm._futhark_entry_llama_q8_cache(this.ctx, ...out, in0.ptr, in1, in2) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = new FutharkOpaque(this, this.wasm.HEAP32[out[0] >> 2], this.wasm._futhark_free_opaque_cache);
  do_free();
  return result0;
}
llama_q8_init(in0, in1, in2, in3, in4, in5, in6, in7, in8, in9, in10, in11, in12, in13, in14, in15, in16, in17, in18, in19, in20, in21, in22, in23, in24, in25, in26, in27, in28, in29, in30, in31, in32, in33, in34, in35, in36, in37, in38, in39, in40, in41, in42, in43, in44, in45) {
  var out = [4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
    if (in10 instanceof Array) { in10 = this.new_u8_4d_from_jsarray(in10); to_free.push(in10); }
    if (in11 instanceof Array) { in11 = this.new_u16_3d_from_jsarray(in11); to_free.push(in11); }
    if (in12 instanceof Array) { in12 = this.new_u16_3d_from_jsarray(in12); to_free.push(in12); }
    if (in13 instanceof Array) { in13 = this.new_f32_2d_from_jsarray(in13); to_free.push(in13); }
    if (in14 instanceof Array) { in14 = this.new_u8_5d_from_jsarray(in14); to_free.push(in14); }
    if (in15 instanceof Array) { in15 = this.new_u16_4d_from_jsarray(in15); to_free.push(in15); }
    if (in16 instanceof Array) { in16 = this.new_u16_4d_from_jsarray(in16); to_free.push(in16); }
    if (in17 instanceof Array) { in17 = this.new_u8_5d_from_jsarray(in17); to_free.push(in17); }
    if (in18 instanceof Array) { in18 = this.new_u16_4d_from_jsarray(in18); to_free.push(in18); }
    if (in19 instanceof Array) { in19 = this.new_u16_4d_from_jsarray(in19); to_free.push(in19); }
    if (in20 instanceof Array) { in20 = this.new_u8_5d_from_jsarray(in20); to_free.push(in20); }
    if (in21 instanceof Array) { in21 = this.new_u16_4d_from_jsarray(in21); to_free.push(in21); }
    if (in22 instanceof Array) { in22 = this.new_u16_4d_from_jsarray(in22); to_free.push(in22); }
    if (in23 instanceof Array) { in23 = this.new_f32_2d_from_jsarray(in23); to_free.push(in23); }
    if (in24 instanceof Array) { in24 = this.new_f32_2d_from_jsarray(in24); to_free.push(in24); }
    if (in25 instanceof Array) { in25 = this.new_f32_2d_from_jsarray(in25); to_free.push(in25); }
    if (in26 instanceof Array) { in26 = this.new_f32_2d_from_jsarray(in26); to_free.push(in26); }
    if (in27 instanceof Array) { in27 = this.new_f32_2d_from_jsarray(in27); to_free.push(in27); }
    if (in28 instanceof Array) { in28 = this.new_u8_5d_from_jsarray(in28); to_free.push(in28); }
    if (in29 instanceof Array) { in29 = this.new_u16_4d_from_jsarray(in29); to_free.push(in29); }
    if (in30 instanceof Array) { in30 = this.new_u16_4d_from_jsarray(in30); to_free.push(in30); }
    if (in31 instanceof Array) { in31 = this.new_f32_2d_from_jsarray(in31); to_free.push(in31); }
    if (in32 instanceof Array) { in32 = this.new_u8_5d_from_jsarray(in32); to_free.push(in32); }
    if (in33 instanceof Array) { in33 = this.new_u16_4d_from_jsarray(in33); to_free.push(in33); }
    if (in34 instanceof Array) { in34 = this.new_u16_4d_from_jsarray(in34); to_free.push(in34); }
    if (in35 instanceof Array) { in35 = this.new_u8_5d_from_jsarray(in35); to_free.push(in35); }
    if (in36 instanceof Array) { in36 = this.new_u16_4d_from_jsarray(in36); to_free.push(in36); }
    if (in37 instanceof Array) { in37 = this.new_u16_4d_from_jsarray(in37); to_free.push(in37); }
    if (in38 instanceof Array) { in38 = this.new_u8_5d_from_jsarray(in38); to_free.push(in38); }
    if (in39 instanceof Array) { in39 = this.new_u16_4d_from_jsarray(in39); to_free.push(in39); }
    if (in40 instanceof Array) { in40 = this.new_u16_4d_from_jsarray(in40); to_free.push(in40); }
    if (in41 instanceof Array) { in41 = this.new_f32_1d_from_jsarray(in41); to_free.push(in41); }
    if (in42 instanceof Array) { in42 = this.new_u8_4d_from_jsarray(in42); to_free.push(in42); }
    if (in43 instanceof Array) { in43 = this.new_u16_3d_from_jsarray(in43); to_free.push(in43); }
    if (in44 instanceof Array) { in44 = this.new_u16_3d_from_jsarray(in44); to_free.push(in44); }
    if (in45 instanceof Array) { in45 = this.new_f32_1d_from_jsarray(in45); to_free.push(in45); }
  if (this.wasm._futhark_entry_llama_q8_init(this.ctx, ...out, in0, in1, in2, in3, in4, in5, in6, in7, in8, in9, in10.ptr, in11.ptr, in12.ptr, in13.ptr, in14.ptr, in15.ptr, in16.ptr, in17.ptr, in18.ptr, in19.ptr, in20.ptr, in21.ptr, in22.ptr, in23.ptr, in24.ptr, in25.ptr, in26.ptr, in27.ptr, in28.ptr, in29.ptr, in30.ptr, in31.ptr, in32.ptr, in33.ptr, in34.ptr, in35.ptr, in36.ptr, in37.ptr, in38.ptr, in39.ptr, in40.ptr, in41.ptr, in42.ptr, in43.ptr, in44.ptr, in45.ptr) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = new FutharkOpaque(this, this.wasm.HEAP32[out[0] >> 2], this.wasm._futhark_free_opaque_llama_q8_wasm_params);
  do_free();
  return result0;
}
llama_q8_run(in0, in1, in2, in3, in4, in5) {
  var out = [4, 4].map(n => this.wasm._malloc(n));
  var to_free = [];
  var do_free = () => { out.forEach(this.wasm._free); to_free.forEach(f => f.free()); };
    if (in2 instanceof Array) { in2 = this.new_i64_1d_from_jsarray(in2); to_free.push(in2); }
    if (in3 instanceof Array) { in3 = this.new_i64_1d_from_jsarray(in3); to_free.push(in3); }
    if (in4 instanceof Array) { in4 = this.new_i64_1d_from_jsarray(in4); to_free.push(in4); }
    if (in5 instanceof Array) { in5 = this.new_i64_1d_from_jsarray(in5); to_free.push(in5); }
  if (this.wasm._futhark_entry_llama_q8_run(this.ctx, ...out, in0.ptr, in1.ptr, in2.ptr, in3.ptr, in4.ptr, in5.ptr) > 0) {
    do_free();
    throw this.get_error();
  }
    var result0 = this.new_f32_2d_from_ptr(this.wasm.HEAP32[out[0] >> 2]);
    var result1 = new FutharkOpaque(this, this.wasm.HEAP32[out[1] >> 2], this.wasm._futhark_free_opaque_cache);
  do_free();
  return [result0, result1];
}

}
async function newFutharkContext() {
  var wasm = await loadWASM();
  return new FutharkContext(wasm);
}

export {newFutharkContext, FutharkContext, FutharkArray, FutharkOpaque};